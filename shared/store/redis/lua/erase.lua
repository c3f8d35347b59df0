-- Erase a session's data: every key of it goes, and a tombstone (status 'erased', no
-- owner, no content) stays for the session's TTL, so that an append, a read, an end or a
-- merge on another instance finds the session erased instead of missing (which would
-- rebuild it from another layer). Idempotent: an erased session answers zero counts.
-- KEYS: 1 meta, 2 log, 3 sum, 4 recall, 5 corpus
-- ARGV: 1 owner ('' = no check), 2 now, 3 ttl
-- Returns {status, messages, unsummarised, analytics, ids}: status ok | erased | forbidden | missing
local st = redis.call('HMGET', KEYS[1], 'owner', 'status', 'seq', 'sc', 'an')
if st[2] == 'erased' then return {'erased', 0, 0, 0, 0} end
-- (HMGET answers false, not nil, for a field the hash lacks)
local known = st[2] and true or false
if known and ARGV[1] ~= '' and st[1] ~= ARGV[1] then return {'forbidden', 0, 0, 0, 0} end
local held = redis.call('LLEN', KEYS[2])
local unsummarised = math.max(math.min(held, tonumber(st[3] or '0') - tonumber(st[4] or '0')), 0)
local ids = 0
if known then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'm:' then ids = ids + 1 end
  end
end
local answers = tonumber(st[5] or '0')
redis.call('DEL', unpack(KEYS))
redis.call('HSET', KEYS[1], 'status', 'erased', 'erased_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {known and 'ok' or 'missing', held, unsummarised, answers, ids}
