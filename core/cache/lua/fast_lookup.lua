--#include valid_entry
-- The fast path's whole lookup in one round trip: the coarse versions (created
-- when missing, as versions.lua), the entry key from them (the same SHA-1 the
-- Python side computes in keys.response_key), then lookup.lua's validated GET
-- and rebuild lock. KEYS: stats, then the version counters (sorted by scope).
-- ARGV: lock seconds, stats field, version TTL, entry key prefix, lock key
-- prefix, key material. Returns {fragment or '', locked, versions}.
local values = {}
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', KEYS[i], v, 'EX', ARGV[3])
  end
  values[i - 1] = v
end
local digest = redis.sha1hex(ARGV[6] .. '|' .. table.concat(values, ','))
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
local payload = valid_entry(redis.call('GET', ARGV[4] .. digest))
if payload then return {payload, 0, values} end
if redis.call('SET', ARGV[5] .. digest, '1', 'NX', 'EX', ARGV[1]) then return {'', 1, values} end
return {'', 0, values}
