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
