#!lua flags=allow-oom
-- The Firestore write succeeded: mark ended, keep the result for repeated ends, clear caches.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 end result JSON, 2 ttl
redis.call('HSET', KEYS[1], 'status', 'ended', 'end_result', ARGV[1])
redis.call('HDEL', KEYS[1], 'pending_query')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
