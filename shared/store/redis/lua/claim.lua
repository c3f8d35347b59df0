#!lua
-- Declared (no allow-oom): a full Redis refuses the whole claim before it runs, and the
-- session is refused (fail closed). Undeclared, its first write (a removal, which a full
-- Redis allows) would let the ZADD below through past maxmemory.
-- Take one of a user's active-session slots for a new session (a sorted set of session
-- ids scored by when their slot lapses; lapsed ones are pruned here, on every claim).
-- KEYS: 1 the user's session set
-- ARGV: 1 session id, 2 now, 3 lapses at, 4 cap, 5 ttl of the set
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return {0, redis.call('ZRANGE', KEYS[1], 0, -1)}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return {1}
