--#include valid_entry
-- The entry if it is still valid, or ('' and whether we took the rebuild lock).
-- KEYS: entry, lock, stats. ARGV[1]: lock seconds; ARGV[2]: the stats field
-- ('' = do not count); ARGV[3]: '1' to take the rebuild lock on a miss; ARGV[4]:
-- '1' while tracing (a third reply field: entry_rows, for the toolbar panel).
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
local value = redis.call('GET', KEYS[1])
local payload = valid_entry(value)
local rows = false
if ARGV[4] == '1' then rows = entry_rows(value) end
if payload then return {payload, 0, rows} end
if ARGV[3] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return {'', 1, rows} end
return {'', 0, rows}
