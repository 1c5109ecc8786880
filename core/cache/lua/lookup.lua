--#include valid_entry
-- The entry if it is still valid, or ('' and whether we took the rebuild lock).
-- KEYS: entry, lock, stats. ARGV[1]: lock seconds; ARGV[2]: the stats field
-- ('' = do not count); ARGV[3]: '1' to take the rebuild lock on a miss; ARGV[4]:
-- the client's If-None-Match tags (" t1 t2 ", '' = none); ARGV[5]: '1' while
-- tracing (a third reply field: entry_rows, for the toolbar panel).
-- Returns {entry, 0, rows, tag, 0, fragment offset} on a hit (the client cuts
-- the fragment off the entry: valid_entry), {'', 0, rows, tag, 1} when the
-- client holds the entry (a 304: the fragment is not sent), {'', locked, rows}
-- on a miss.
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
local value = redis.call('GET', KEYS[1])
local tag, offset = valid_entry(value)
local rows = false
if ARGV[5] == '1' then rows = entry_rows(value) end
if tag then
  if not_modified(ARGV[4], tag) then return {'', 0, rows, tag, 1} end
  return {value, 0, rows, tag, 0, offset}
end
if ARGV[3] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return {'', 1, rows} end
return {'', 0, rows}
