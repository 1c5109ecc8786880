-- Shared by lookup.lua and fast_lookup.lua (included by name). An entry is
-- "<keys length> <versions length> <tag>\n<keys><versions><fragment>"
-- (keys.encode_entry): the row counters' keys as a JSON array, the versions they
-- had when the rows were read joined by commas, and the entry's ETag. valid_entry
-- returns the tag and where the fragment starts (its 0-based offset in the entry)
-- only while every row counter still has that version (a missing counter never
-- matches: table.concat refuses its false), else nil. The array is decoded in C
-- and the versions compared as one string: a Lua pattern loop over one line per
-- row, and a SHA-1 of the header for the tag on every hit, cost Redis 38 us
-- against 25 us for a 40-row job-list entry (docs/cache.md, "The entry
-- format"). The scripts reply with the whole entry and that offset, and the
-- client cuts the fragment off: a string.sub here would copy the fragment into a
-- new Lua string, which costs Redis about as much as the GET of the entry itself.
--
-- not_modified: whether the client's If-None-Match (" tag1 tag2 ", or " * ", or
-- "") names the tag.
-- The entry's parts: its tag, where its fragment starts, the row counters'
-- keys and their stored versions (joined); nil for what is not an entry.
local function entry_parts(v)
  local nl = string.find(v, '\n', 1, true)
  if not nl then return nil end
  local klen, vlen, tag = string.match(string.sub(v, 1, nl - 1), '^(%d+) (%d+) (%x*)$')
  if not klen then return nil end
  klen, vlen = tonumber(klen), tonumber(vlen)
  local keys = {}
  if klen > 0 then keys = cjson.decode(string.sub(v, nl + 1, nl + klen)) end
  return tag, nl + klen + vlen, keys, string.sub(v, nl + klen + 1, nl + klen + vlen)
end

-- entry_head: the entry at ``key`` as far as its fragment starts, or all of it
-- when it is short (under HEAD bytes), or nil when there is none. The fast
-- path reads the fragment only when it has to send it (fast_lookup.lua: a
-- process that already holds that fragment is told so instead), so a large
-- page costs Redis its header, not a copy of the page into Lua.
local HEAD = 4096
local function entry_head(key)
  local head = redis.call('GETRANGE', key, 0, HEAD - 1)
  if head == '' then return nil end
  local nl = string.find(head, '\n', 1, true)
  if not nl then return nil end
  local klen, vlen = string.match(string.sub(head, 1, nl - 1), '^(%d+) (%d+) ')
  if not klen then return nil end
  local stop = nl + tonumber(klen) + tonumber(vlen)
  if stop > #head then head = redis.call('GETRANGE', key, 0, stop - 1) end
  return head, #head < HEAD
end

local function valid_entry(v)
  if not v then return nil end
  local tag, offset, keys, want = entry_parts(v)
  if not tag then return nil end
  if #keys > 0 then
    local ok, got = pcall(table.concat, redis.call('MGET', unpack(keys)), ',')
    if not ok or got ~= want then return nil end
  end
  return tag, offset
end

local function not_modified(inm, tag)
  return inm ~= '' and (inm == ' * ' or string.find(inm, ' ' .. tag .. ' ', 1, true) ~= nil)
end

-- Only while the Debug Toolbar's panel traces the request (core/cache/trace.py):
-- the entry's row counters with their stored and current values, flattened as
-- version key, stored version, current version ('' : the counter is missing),
-- so the panel can say which row moved without a lookup of its own. false when
-- there is no entry.
local function entry_rows(v)
  if not v then return false end
  local tag, _, keys, want = entry_parts(v)
  if not tag then return false end
  local got = {}
  if #keys > 0 then got = redis.call('MGET', unpack(keys)) end
  local out, i = {}, 0
  for stored in string.gmatch(want, '[^,]+') do
    i = i + 1
    out[#out + 1] = keys[i]
    out[#out + 1] = stored
    out[#out + 1] = got[i] or ''
  end
  return out
end
