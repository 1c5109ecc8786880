-- Shared by lookup.lua and fast_lookup.lua (included by name). An entry is
-- "<header length>\n<header><fragment>", the header one line
-- "<version key>\t<version>" per row scope: valid_entry returns the fragment only
-- while every row counter still has the version it had when the rows were read
-- (a missing counter never matches), else nil.
local function valid_entry(v)
  if not v then return nil end
  local nl = string.find(v, '\n', 1, true)
  local hlen = tonumber(string.sub(v, 1, nl - 1))
  if hlen > 0 then
    local header = string.sub(v, nl + 1, nl + hlen)
    local keys, want = {}, {}
    for k, ver in string.gmatch(header, '([^\t\n]+)\t([^\n]+)\n') do
      keys[#keys + 1] = k
      want[#want + 1] = ver
    end
    local got = redis.call('MGET', unpack(keys))
    for i = 1, #keys do
      if got[i] ~= want[i] then return nil end
    end
  end
  return string.sub(v, nl + hlen + 1)
end

-- Only while the Debug Toolbar's panel traces the request (core/cache/trace.py):
-- the entry's row header with the counters' current values, flattened as
-- version key, stored version, current version (false: the counter is missing),
-- so the panel can say which row moved without a lookup of its own. false when
-- there is no entry.
local function entry_rows(v)
  if not v then return false end
  local nl = string.find(v, '\n', 1, true)
  local hlen = tonumber(string.sub(v, 1, nl - 1))
  local out = {}
  if hlen > 0 then
    local header = string.sub(v, nl + 1, nl + hlen)
    local keys, want = {}, {}
    for k, ver in string.gmatch(header, '([^\t\n]+)\t([^\n]+)\n') do
      keys[#keys + 1] = k
      want[#want + 1] = ver
    end
    local got = redis.call('MGET', unpack(keys))
    for i = 1, #keys do
      out[#out + 1] = keys[i]
      out[#out + 1] = want[i]
      out[#out + 1] = got[i] or ''
    end
  end
  return out
end
