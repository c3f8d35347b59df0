-- Erase a session's data: every key of it goes, and a tombstone (status 'erased', no
-- owner, no content) stays for the session's TTL, so that an append, a read, an end or a
-- merge on another instance finds the session erased instead of missing (which would
-- rebuild it from another layer). Idempotent: an erased session answers zero counts.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 owner ('' = no check), 2 now, 3 ttl
-- Returns {status, messages, unsummarised, analytics, ids}: status ok | erased | forbidden | missing
local st = redis.call('HMGET', KEYS[1], 'owner', 'status')
if st[2] == 'erased' then return {'erased', 0, 0, 0, 0} end
if redis.call('EXISTS', KEYS[1]) == 1 and ARGV[1] ~= '' and st[1] ~= ARGV[1] then
  return {'forbidden', 0, 0, 0, 0}
end
local known = redis.call('EXISTS', KEYS[1])
local counts = {redis.call('LLEN', KEYS[2]), redis.call('LLEN', KEYS[3]), redis.call('LLEN', KEYS[4]),
                redis.call('HLEN', KEYS[5])}
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[1], 'status', 'erased', 'erased_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {known == 1 and 'ok' or 'missing', counts[1], counts[2], counts[3], counts[4]}
