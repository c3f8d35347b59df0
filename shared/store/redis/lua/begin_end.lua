#!lua flags=allow-oom
-- Start ending a session: mark it 'ending' under this attempt's token (appends, merges and
-- summary stores are refused from now on, so nothing can be accepted after this snapshot
-- and missed by the analytics) and return everything. Only the attempt holding the token
-- may reopen the session; another attempt waits ('busy') until the lease runs out, and may
-- take over an attempt that released it (token '') at once.
-- KEYS: 1 meta, 2 log, 3 sum
-- ARGV: 1 owner ('' = no check), 2 this attempt's token, 3 now, 4 lease seconds,
--       5 idle bound ('' = none): 'in_use' if the session was used after it,
--       6... the state fields to return (the message ids stay in Redis)
local m = redis.call('HMGET', KEYS[1], 'owner', 'status', 'end_token', 'ending_since', 'last_active_at')
if not m[2] then return {'missing'} end
-- an erased session's tombstone holds no owner: it answers 'erased' to everyone
if m[2] == 'erased' then return {'erased'} end
if ARGV[1] ~= '' and m[1] ~= ARGV[1] then return {'forbidden'} end
if m[2] == 'ended' then return {'ended', redis.call('HGET', KEYS[1], 'end_result') or ''} end
local now = tonumber(ARGV[3])
if m[2] == 'ending' and (m[3] or '') ~= '' and m[3] ~= ARGV[2]
    and now - (tonumber(m[4]) or 0) < tonumber(ARGV[4]) then
  return {'busy'}
end
if ARGV[5] ~= '' and (tonumber(m[5]) or 0) > tonumber(ARGV[5]) then return {'in_use'} end
redis.call('HSET', KEYS[1], 'status', 'ending', 'end_token', ARGV[2], 'ending_since', ARGV[3])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
return {'ok', redis.call('HMGET', KEYS[1], unpack(fields)), redis.call('LRANGE', KEYS[2], 0, -1),
        redis.call('GET', KEYS[3]) or '', redis.call('HGET', KEYS[1], 'sc') or '0'}
