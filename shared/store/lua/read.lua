#!lua flags=allow-oom
-- Context/history read: one round trip; slides the TTL (reading is activity).
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 owner ('' = no check), 2 how many messages, 3 ttl, 4 now
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local m = redis.call('HMGET', KEYS[1], 'owner', 'status', 'seq', 'end_result', 'fs_doc')
-- an erased session's tombstone holds no owner: it answers 'erased' to everyone
if m[2] == 'erased' then return {'erased'} end
if ARGV[1] ~= '' and m[1] ~= ARGV[1] then return {'forbidden'} end
local n = tonumber(ARGV[2])
local msgs = {}
if n > 0 then msgs = redis.call('LRANGE', KEYS[2], -n, -1) end
if m[2] == 'active' then
  -- the sweep ends sessions by last_active_at: a session being read is in use
  redis.call('HSET', KEYS[1], 'last_active_at', ARGV[4])
  for i = 1, 6 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
end
-- the last field: '0' while the session has no Firestore document yet
return {'ok', m[2] or '', m[3] or '0', msgs, redis.call('GET', KEYS[6]) or '', m[4] or '', m[5] or ''}
