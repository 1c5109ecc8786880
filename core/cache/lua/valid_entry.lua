-- Shared by lookup.lua and fast_lookup.lua (included by name). An entry is
-- "<header length>\n<header><fragment>", the header one line
-- "<version key>\t<version>" per row scope: valid_entry returns the header and
-- where the fragment starts (its 0-based offset in the entry) only while every
-- row counter still has the version it had when the rows were read (a missing
-- counter never matches), else nil. The scripts reply with the whole entry and
-- that offset, and the client cuts the fragment off: a string.sub here would copy
-- the fragment into a new Lua string, which costs Redis about as much as the GET
-- of the entry itself (12 of 55 us for a 13 KB job-list page, measured with
-- INFO commandstats).
--
-- entry_tag: the entry's ETag, SHA-1 of the key's digest (its last 40
-- characters: the coarse versions) and the header (the row versions), what
-- keys.entry_tag computes before a miss is rendered. not_modified: whether the
-- client's If-None-Match (" tag1 tag2 ", or " * ", or "") names it.
-- The entry's parts: its header, its fragment, and the row counters the header
-- names with the versions it stored and their current values (one MGET).
local function entry_parts(v)
  local nl = string.find(v, '\n', 1, true)
  local hlen = tonumber(string.sub(v, 1, nl - 1))
  local header = string.sub(v, nl + 1, nl + hlen)
  local keys, want, got = {}, {}, {}
  if hlen > 0 then
    for k, ver in string.gmatch(header, '([^\t\n]+)\t([^\n]+)\n') do
      keys[#keys + 1] = k
      want[#want + 1] = ver
    end
    got = redis.call('MGET', unpack(keys))
  end
  return header, nl + hlen, keys, want, got
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
  local hlen = tonumber(string.sub(head, 1, nl - 1))
  if not hlen then return nil end
  if nl + hlen > #head then head = redis.call('GETRANGE', key, 0, nl + hlen - 1) end
  return head, #head < HEAD
end

local function valid_entry(v)
  if not v then return nil end
  local header, offset, keys, want, got = entry_parts(v)
  for i = 1, #keys do
    if got[i] ~= want[i] then return nil end
  end
  return header, offset
end

local function entry_tag(key, header)
  return redis.sha1hex(string.sub(key, -40) .. '\n' .. header)
end

local function not_modified(inm, tag)
  return inm ~= '' and (inm == ' * ' or string.find(inm, ' ' .. tag .. ' ', 1, true) ~= nil)
end

-- Only while the Debug Toolbar's panel traces the request (core/cache/trace.py):
-- the entry's row header with the counters' current values, flattened as
-- version key, stored version, current version (false: the counter is missing),
-- so the panel can say which row moved without a lookup of its own. false when
-- there is no entry.
local function entry_rows(v)
  if not v then return false end
  local _, _, keys, want, got = entry_parts(v)
  local out = {}
  for i = 1, #keys do
    out[#out + 1] = keys[i]
    out[#out + 1] = want[i]
    out[#out + 1] = got[i] or ''
  end
  return out
end
