-- The failover fence (sentinel.py). KEYS: the master key, the generation counter,
-- then -- when ARGV[3] is a WAL position -- the generation's lsn: companion and
-- lsn-max. ARGV: the server's replication id, the counters' TTL, the position or ''.
-- If the stored id is not this server's, this is the first connection to a new
-- master: bump the generation (as bump.lua does, created fresh when missing),
-- raise its floor, store the id. Returns 1 when it fenced, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
if redis.call('INCR', KEYS[2]) == 1 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])), 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if ARGV[3] ~= '' then
  local lsn = tonumber(ARGV[3])
  for i = 3, 4 do
    local old = redis.call('GET', KEYS[i])
    if not old or tonumber(old) < lsn then redis.call('SET', KEYS[i], ARGV[3]) end
  end
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
