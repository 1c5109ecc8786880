--#include floor
-- The current value of ARGV[2] counters in KEYS, creating a missing one from the
-- server clock in microseconds (larger than any value it had before); an existing
-- one with less than half of its TTL left gets the whole TTL again.
-- ARGV[1]: the counters' TTL in seconds. ARGV[3] = '1': the KEYS also hold the
-- counters' lsn: companions and lsn-max (bump.lua's order); the reply is then
-- {values, floor} (floor.lua), else the values alone.
local n = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local key = KEYS[i]
  local v = redis.call('GET', key)
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', key, v, 'EX', ARGV[1])
    -- Replied as a number (an integer reply; exact below 2^53), the others as the
    -- strings stored: the caller knows which counters this read created, and drops
    -- them again when the response is not stored (a 404: response.py).
    v = tonumber(v)
  else
    -- Read often, never expires: refreshed once less than half its life is left.
    local left = redis.call('TTL', key)
    if left >= 0 and left < tonumber(ARGV[1]) / 2 then redis.call('EXPIRE', key, ARGV[1]) end
  end
  out[i] = v
end
if ARGV[3] == '1' then return {out, read_floor(1, n, ARGV[1])} end
return out
