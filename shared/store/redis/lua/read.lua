#!lua flags=allow-oom
-- Context/history read: one round trip; slides the TTL (reading is activity).
-- KEYS: 1 meta, 2 log, 3 sum, 4 recall (the memories recalled when the last user message was taken)
-- ARGV: 1 owner ('' = no check), 2 how many messages, 3 ttl, 4 now, 5 window max bytes,
--       6 slack: a TTL within this many seconds of full is not slid again (a read just after
--       an append, the usual turn, writes nothing: one TTL instead of a HSET and three EXPIREs)
local m = redis.call('HMGET', KEYS[1], 'status', 'owner', 'seq', 'end_result', 'fs_doc')
if not m[1] then return {'missing'} end
-- an erased session's tombstone holds no owner: it answers 'erased' to everyone
if m[1] == 'erased' then return {'erased'} end
if ARGV[1] ~= '' and m[2] ~= ARGV[1] then return {'forbidden'} end
local n = tonumber(ARGV[2])
local msgs = {}
if n > 0 then
  msgs = redis.call('LRANGE', KEYS[2], -n, -1)
  -- the window's byte bound (append.lua's measure): past it the oldest leave the window
  -- early; the newest message is always in it
  local total, first = 0, #msgs
  for i = #msgs, 1, -1 do
    total = total + math.floor(#msgs[i] * 5 / 4) + 64
    if total > tonumber(ARGV[5]) and i < #msgs then break end
    first = i
  end
  if first > 1 then
    local kept = {}
    for i = first, #msgs do kept[#kept + 1] = msgs[i] end
    msgs = kept
  end
end
if m[1] == 'active' and redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) - tonumber(ARGV[6]) then
  -- the sweep ends sessions by last_active_at: a session being read is in use
  redis.call('HSET', KEYS[1], 'last_active_at', ARGV[4])
  for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
end
-- field 7: '0' while the session has no Firestore document yet; 8: the recalled memories
local recall = ''
if KEYS[4] then recall = redis.call('GET', KEYS[4]) or '' end
return {'ok', m[1], m[3] or '0', msgs, redis.call('GET', KEYS[3]) or '', m[4] or '', m[5] or '', recall}
