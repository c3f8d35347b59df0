#!lua flags=allow-oom
-- Start ending a session: mark it 'ending' (appends are refused from now on, so nothing
-- can be accepted after this snapshot and missed by the analytics) and return everything.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 owner ('' = no check)
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local owner = redis.call('HGET', KEYS[1], 'owner')
if ARGV[1] ~= '' and owner ~= ARGV[1] then return {'forbidden'} end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'ended' then return {'ended', redis.call('HGET', KEYS[1], 'end_result') or ''} end
redis.call('HSET', KEYS[1], 'status', 'ending')
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('LRANGE', KEYS[4], 0, -1), redis.call('GET', KEYS[6]) or '',
        redis.call('LRANGE', KEYS[2], 0, -1)}
