#!lua flags=allow-oom
-- The Firestore write failed: reopen the session so nothing is lost and the end can be retried.
-- KEYS: 1 meta
if redis.call('HGET', KEYS[1], 'status') == 'ending' then
  redis.call('HSET', KEYS[1], 'status', 'active')
  return 1
end
return 0
