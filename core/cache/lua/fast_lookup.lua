--#include valid_entry
--#include floor
-- The fast path's whole lookup in one round trip: the coarse versions (created
-- when missing, as versions.lua), the entry key from them (the same SHA-1 the
-- Python side computes in keys.response_key), then lookup.lua's validated GET
-- and rebuild lock. KEYS: stats, then ARGV[7] version counters (sorted by
-- scope), then -- when ARGV[8] = '1' -- their lsn: companions and lsn-max.
-- ARGV: lock seconds, stats field, version TTL, entry key prefix, lock key
-- prefix, key material, counter count, floor wanted, the client's If-None-Match
-- tags (" t1 t2 ", '' = none), '1' while tracing (the toolbar panel), and for a
-- signed-in caller already resolved in this process: its token entry's key and
-- the user snapshot that entry held ('' and '' otherwise), then the tag of the
-- fragment this process already holds for this key material ('' for none).
-- A signed-in caller is checked first: unless the token's entry is still valid
-- (valid_entry: every counter its header names unchanged) and still holds that
-- snapshot, the script returns {false} and does nothing else (callers.py).
-- Returns {entry or '', locked, versions, floor ('' when not wanted or
-- unknown), entry_rows or false, tag, not modified, fragment offset}: a hit
-- returns the whole entry and where its fragment starts (valid_entry); a hit the
-- client already holds returns no entry and 1 (it is answered 304); a hit whose
-- fragment this process holds (its tag is ARGV[13]) returns no entry and 2; a
-- miss has no tag.
if ARGV[11] ~= '' then
  local caller = redis.call('GET', ARGV[11])
  local caller_tag, caller_offset = valid_entry(caller)
  if not caller_tag or string.sub(caller, caller_offset + 1) ~= ARGV[12] then return {false} end
end
local n = tonumber(ARGV[7])
local values = {}
-- The reply's versions: a counter created here as a number, as versions.lua.
local shown = {}
for i = 2, n + 1 do
  local v = redis.call('GET', KEYS[i])
  shown[i - 1] = v
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', KEYS[i], v, 'EX', ARGV[3])
    shown[i - 1] = tonumber(v)
  else
    -- as versions.lua: refreshed once less than half of its life is left
    local left = redis.call('TTL', KEYS[i])
    if left >= 0 and left < tonumber(ARGV[3]) / 2 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
  end
  values[i - 1] = v
end
local floor = ''
if ARGV[8] == '1' then floor = read_floor(2, n, ARGV[3]) end
local digest = redis.sha1hex(ARGV[6] .. '|' .. table.concat(values, ','))
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
local entry_key = ARGV[4] .. digest
local value, whole = entry_head(entry_key)
local tag, offset = valid_entry(value)
local rows = false
if ARGV[10] == '1' then rows = entry_rows(value) end
if tag then
  if not_modified(ARGV[9], tag) then return {'', 0, shown, floor, rows, tag, 1} end
  if ARGV[13] == tag then return {'', 0, shown, floor, rows, tag, 2} end
  if not whole then value = redis.call('GET', entry_key) end
  return {value, 0, shown, floor, rows, tag, 0, offset}
end
if redis.call('SET', ARGV[5] .. digest, '1', 'NX', 'EX', ARGV[1]) then return {'', 1, shown, floor, rows} end
return {'', 0, shown, floor, rows}
