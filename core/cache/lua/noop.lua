-- One Redis call (the server's clock) and back: one EVALSHA of it is the least a
-- validated lookup costs (a round trip to Redis, a script run, a call in it),
-- which make bench measures as the fast path's bound (RedisBackend.bare_round_trip).
return redis.call('TIME')
