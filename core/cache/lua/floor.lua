-- Shared by versions.lua and fast_lookup.lua (included by name): the read floor
-- of counters KEYS[first .. first + n - 1], whose lsn: companions follow them and
-- lsn-max follows those. A missing companion counts as lsn-max; returns the
-- largest position as the string it was stored as, or '' when lsn-max itself is
-- missing (the caller then asks the primary).
local function read_floor(first, n)
  local max = redis.call('GET', KEYS[first + 2 * n])
  local best, best_s = -1, ''
  for i = first + n, first + 2 * n - 1 do
    local v = redis.call('GET', KEYS[i]) or max
    if not v then return '' end
    if tonumber(v) > best then best, best_s = tonumber(v), v end
  end
  if n == 0 then return max or '' end
  return best_s
end
