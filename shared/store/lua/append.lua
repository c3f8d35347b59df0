-- One append = this script = one round trip.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 owner ('' = no check), 2 role, 3 message tail (JSON after '{"seq":N,'),
--       4 message id (the client message id when given), 5 window, 6 ttl, 7 summary interval,
--       8 analytics max, 9 now, 10 content as a JSON string, 11 analytics tail, 12 pend max
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local m = redis.call('HMGET', KEYS[1], 'owner', 'status', 'fs_doc')
if ARGV[1] ~= '' and m[1] ~= ARGV[1] then return {'forbidden'} end
if m[2] ~= 'active' then return {'ended', m[2] or ''} end
-- Exactly once per message id: a client retry with the same client_message_id, a
-- redis-py retry after a lost reply, or a merge after an outage all find it here.
local idkey = 'mid:' .. ARGV[4]
local prev = redis.call('HGET', KEYS[5], idkey)
if prev then return {'dup', prev} end
if ARGV[2] == 'assistant' and redis.call('LLEN', KEYS[4]) >= tonumber(ARGV[8]) then
  return {'full'}
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local msg = '{"seq":' .. seq .. ',' .. ARGV[3]
redis.call('RPUSH', KEYS[2], msg)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
-- Messages not yet covered by a summary: the summarizer's input. Bounded so that a
-- summarizer failing for ever cannot grow it without limit.
redis.call('RPUSH', KEYS[3], msg)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[12]), -1)
if ARGV[2] == 'user' then
  redis.call('HSET', KEYS[1], 'pending_query', ARGV[10])
elseif ARGV[2] == 'assistant' then
  local q = redis.call('HGET', KEYS[1], 'pending_query') or 'null'
  redis.call('RPUSH', KEYS[4], '{"seq":' .. seq .. ',"query":' .. q .. ',' .. ARGV[11])
  redis.call('HDEL', KEYS[1], 'pending_query')
end
redis.call('HSET', KEYS[1], 'last_active_at', ARGV[9])
-- Exactly one append gets each multiple of the interval: the summary claim is the
-- sequence number itself, assigned atomically here, so no other instance can claim it.
local due = 0
if seq % tonumber(ARGV[7]) == 0 then due = 1 end
-- 1: the session has no Firestore document yet (created while Firestore was down)
local nodoc = 0
if m[3] == '0' then nodoc = 1 end
redis.call('HSET', KEYS[5], idkey, '{"seq":' .. seq .. ',"summary_due":' .. due .. '}')
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[6])) end
if due == 1 then
  return {'ok', seq, due, nodoc, redis.call('GET', KEYS[6]) or '', redis.call('LRANGE', KEYS[3], 0, -1)}
end
return {'ok', seq, due, nodoc}
