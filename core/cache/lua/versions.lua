-- The current value of every counter in KEYS, creating a missing one from the
-- server clock in microseconds (larger than any value it had before).
-- ARGV[1]: the counters' TTL in seconds.
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', key, v, 'EX', ARGV[1])
  end
  out[i] = v
end
return out
