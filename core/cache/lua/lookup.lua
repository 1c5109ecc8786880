--#include valid_entry
-- The entry if it is still valid, or ('' and whether we took the rebuild lock).
-- KEYS: entry, lock, stats. ARGV[1]: lock seconds; ARGV[2]: the stats field
-- ('' = do not count); ARGV[3]: '1' to take the rebuild lock on a miss.
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
local payload = valid_entry(redis.call('GET', KEYS[1]))
if payload then return {payload, 0} end
if ARGV[3] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return {'', 1} end
return {'', 0}
