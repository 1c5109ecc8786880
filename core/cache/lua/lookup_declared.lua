-- Redis Cluster: lookup.lua without the row check, so that it touches only the
-- keys it declares (a script may not reach keys it was not given). KEYS: entry,
-- lock, stats (one hash tag: one slot). ARGV as lookup.lua. Returns {entry or '',
-- locked}; the caller checks the entry's row header with an MGET of the counters
-- it names (the same hash tag) and takes the lock itself if that check fails.
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
local v = redis.call('GET', KEYS[1])
if v then return {v, 0} end
if ARGV[3] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return {'', 1} end
return {'', 0}
