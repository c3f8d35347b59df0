-- Store a recall's result (and the corpus it ranked, when it was read from Firestore) for
-- the session's context reads; only while the session is active.
-- KEYS: 1 meta, 2 recall, 3 corpus
-- ARGV: 1 recall JSON, 2 corpus JSON ('' = keep the cached one), 3 ttl
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ttl)
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2], 'EX', ttl) else redis.call('EXPIRE', KEYS[3], ttl) end
return 1
