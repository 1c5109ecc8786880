-- Shared by versions.lua and fast_lookup.lua (included by name): the read floor
-- of counters KEYS[first .. first + n - 1], whose lsn: companions follow them and
-- lsn-max follows those. A missing companion (a counter never bumped, or its
-- companion evicted) is set to lsn-max now -- every position recorded so far, so
-- safe -- and only grows from there with the counter's own bumps (a never-bumped
-- scope must not follow every other scope's writes). Returns the largest position
-- as the string it was stored as, or '' when lsn-max itself is missing (a new or
-- restarted Redis: the caller asks the primary and records lsn-max).
local function read_floor(first, n, ttl)
  local max = redis.call('GET', KEYS[first + 2 * n])
  if not max then return '' end
  local best, best_s = tonumber(max), max
  if n > 0 then best, best_s = -1, '' end
  for i = first + n, first + 2 * n - 1 do
    local v = redis.call('GET', KEYS[i])
    if not v then
      v = max
      redis.call('SET', KEYS[i], v, 'EX', ttl)
    end
    if tonumber(v) > best then best, best_s = tonumber(v), v end
  end
  return best_s
end
