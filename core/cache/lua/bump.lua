-- One INCR per counter in KEYS; INCR creating the key (value 1) means it was
-- missing: then it starts from the server clock in microseconds instead.
-- ARGV[1]: the counters' TTL in seconds.
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'EX', ARGV[1])
  else
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return #KEYS
