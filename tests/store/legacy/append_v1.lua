-- One append = this script = one round trip.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 owner ('' = no check), 2 role, 3 message tail (JSON after '{"seq":N,'),
--       4 message id (the client message id when given), 5 window, 6 ttl, 7 summary interval,
--       8 analytics max, 9 now, 10 content as a JSON string, 11 analytics tail, 12 pend max,
--       13 analytics max bytes, 14 pend max bytes, 15 message ids remembered (exactly-once horizon),
--       16 window max bytes
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
local m = redis.call('HMGET', KEYS[1], 'owner', 'status', 'fs_doc')
-- an erased session's tombstone holds no owner: it answers 'erased' to everyone
if m[2] == 'erased' then return {'erased'} end
if ARGV[1] ~= '' and m[1] ~= ARGV[1] then return {'forbidden'} end
if m[2] ~= 'active' then return {'ended', m[2] or ''} end
-- Exactly once per message id: a client retry with the same client_message_id, a
-- redis-py retry after a lost reply, or a merge after an outage all find it here.
local idkey = 'mid:' .. ARGV[4]
local prev = redis.call('HGET', KEYS[5], idkey)
if prev then return {'dup', prev} end
-- Bytes as Redis itself counts them (MEMORY USAGE walks a list's nodes, not its items),
-- so entries that a merge after an outage added count too. A new entry costs its length,
-- up to a quarter more for the allocator's size classes, and 128 bytes of seq prefix and
-- list-node overhead.
local function bytes(key)
  return tonumber(redis.call('MEMORY', 'USAGE', key, 'SAMPLES', 0) or 0)
end
local query = 'null'
if ARGV[2] == 'assistant' then
  query = redis.call('HGET', KEYS[1], 'pending_query') or 'null'
  if redis.call('LLEN', KEYS[4]) >= tonumber(ARGV[8])
    or bytes(KEYS[4]) + (#ARGV[11] + #query) * 5 / 4 + 128 > tonumber(ARGV[13]) then
    return {'full'}
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local msg = '{"seq":' .. seq .. ',' .. ARGV[3]
redis.call('RPUSH', KEYS[2], msg)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
while redis.call('LLEN', KEYS[2]) > 1 and bytes(KEYS[2]) > tonumber(ARGV[16]) do
  redis.call('LPOP', KEYS[2])
end
-- Messages not yet covered by a summary: the summarizer's input. Bounded so that a
-- summarizer failing for ever cannot grow it without limit.
redis.call('RPUSH', KEYS[3], msg)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[12]), -1)
while redis.call('LLEN', KEYS[3]) > 1 and bytes(KEYS[3]) > tonumber(ARGV[14]) do
  redis.call('LPOP', KEYS[3])
end
if ARGV[2] == 'user' then
  redis.call('HSET', KEYS[1], 'pending_query', ARGV[10])
elseif ARGV[2] == 'assistant' then
  redis.call('RPUSH', KEYS[4], '{"seq":' .. seq .. ',"query":' .. query .. ',' .. ARGV[11])
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
redis.call('HSET', KEYS[5], idkey, '{"seq":' .. seq .. ',"summary_due":' .. due .. '}', 'seq:' .. seq, idkey)
-- Remember the last N message ids only: a retry of an older message is stored again.
local old = 'seq:' .. (seq - tonumber(ARGV[15]))
local oldid = redis.call('HGET', KEYS[5], old)
if oldid then redis.call('HDEL', KEYS[5], old, oldid) end
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[6])) end
if due == 1 then
  return {'ok', seq, due, nodoc, redis.call('GET', KEYS[6]) or '', redis.call('LRANGE', KEYS[3], 0, -1)}
end
return {'ok', seq, due, nodoc}
