-- Store a rolling summary only if it covers more than the stored one (compare and set).
-- The messages it covers stay in the log (the end pairs questions and answers from it).
-- KEYS: 1 meta, 2 log, 3 sum
-- ARGV: 1 summary JSON, 2 covered seq, 3 ttl
-- Only into an active session: once an end took its snapshot the caches are about to go.
local m = redis.call('HMGET', KEYS[1], 'status', 'sc')
if m[1] ~= 'active' then return 0 end
local covered = tonumber(ARGV[2])
if tonumber(m[2] or '0') >= covered then return 0 end
redis.call('SET', KEYS[3], ARGV[1], 'EX', tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'sc', covered)
return 1
