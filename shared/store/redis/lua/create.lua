-- Create (or re-hydrate from Firestore) a session's state. Never overwrites a live one.
-- 'v' 2: the three-key layout. Nothing reads it now; it is still written because the
-- previous release's scripts took a hash without it for an older layout, and instances of
-- that release may serve the same Redis during a rolling deploy.
-- KEYS: 1 meta
-- ARGV: 1 owner, 2 status, 3 seq, 4 created_at, 5 last_active_at, 6 user_info JSON, 7 ttl,
--       8 fs_doc ('1' if the Firestore document exists), 9 memory ('0': a memory-off session)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'status', ARGV[2], 'seq', ARGV[3],
  'created_at', ARGV[4], 'last_active_at', ARGV[5], 'user_info', ARGV[6], 'fs_doc', ARGV[8], 'v', '2')
if ARGV[9] == '0' then redis.call('HSET', KEYS[1], 'memory', '0') end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
return 1
