-- What a recall needs, in one round trip: whether the session is the caller's, active and
-- memory-on; its latest messages (the query is drawn from the user's among them); and the
-- user's memories as cached for this conversation (or '' when not cached yet).
-- KEYS: 1 meta, 2 log, 3 corpus
-- ARGV: 1 owner ('' = no check), 2 how many of the latest messages
local m = redis.call('HMGET', KEYS[1], 'status', 'owner', 'memory')
if not m[1] then return {'missing'} end
if m[1] ~= 'active' then return {'ended'} end
if ARGV[1] ~= '' and m[2] ~= ARGV[1] then return {'forbidden'} end
if m[3] == '0' then return {'off'} end
return {'ok', redis.call('LRANGE', KEYS[2], -tonumber(ARGV[2]), -1), redis.call('GET', KEYS[3]) or ''}
