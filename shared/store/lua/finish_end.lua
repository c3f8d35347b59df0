#!lua flags=allow-oom
-- The session document says ended: mark ended, keep the result for repeated ends, clear
-- the caches. While 'ending' nothing is accepted (appends, merges and summary stores all
-- refuse), so whichever attempt's snapshot was committed holds everything the caches hold.
-- A session found 'active' was reopened after the committed snapshot: it is marked ended
-- (nothing more is accepted) but its caches are left to the TTL, and the caller is told (2).
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 end result JSON, 2 ttl
local status = redis.call('HGET', KEYS[1], 'status')
-- A session Redis does not know is answered from its document: a hash holding only the
-- result would lack the owner, and every owner check would refuse the owner.
if not status or status == 'ended' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'ended', 'end_result', ARGV[1])
redis.call('HDEL', KEYS[1], 'pending_query', 'end_token', 'ending_since')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if status == 'active' then return 2 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
return 1
