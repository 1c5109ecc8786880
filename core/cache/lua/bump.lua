-- One INCR per counter; INCR creating the key (value 1) means it was missing:
-- then it starts from the server clock in microseconds instead.
-- KEYS: ARGV[3] counters, then (when ARGV[2] is a WAL position) their lsn:
-- companions in the same order and lsn-max. ARGV[1]: the counters' TTL in
-- seconds; ARGV[2]: the primary's WAL position after the write's commit, or ''.
-- Companions and lsn-max only ever grow (two writers' bumps may arrive out of
-- order). Positions fit a Lua number exactly below 2^53 bytes of WAL.
local n = tonumber(ARGV[3])
for i = 1, n do
  local key = KEYS[i]
  if redis.call('INCR', key) == 1 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'EX', ARGV[1])
  else
    redis.call('EXPIRE', key, ARGV[1])
  end
end
if ARGV[2] ~= '' then
  local lsn = tonumber(ARGV[2])
  for i = n + 1, 2 * n do
    local old = redis.call('GET', KEYS[i])
    if not old or tonumber(old) < lsn then
      redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[1])
    else
      redis.call('EXPIRE', KEYS[i], ARGV[1])
    end
  end
  local max = redis.call('GET', KEYS[2 * n + 1])
  if not max or tonumber(max) < lsn then redis.call('SET', KEYS[2 * n + 1], ARGV[2]) end
end
return n
