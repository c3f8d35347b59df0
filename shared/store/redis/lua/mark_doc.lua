-- The session's Firestore document now exists (written after Firestore came back).
-- KEYS: 1 meta
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'fs_doc', '1')
return 1
