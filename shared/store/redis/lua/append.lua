-- One append = this script = one round trip of seven Redis commands (EVALSHA included).
-- A session is three keys (layer.py): its state hash (meta: the session's fields, a
-- byte ledger, the answer count and the ids of its messages, which make appends exactly
-- once), its log (every message, in order: the window, the summarizer's input and, at the
-- end, the question/answer pairs are all read from it) and its rolling summary (sum).
-- KEYS: 1 meta, 2 log, 3 sum
-- ARGV: 1 owner ('' = no check), 2 role, 3 message tail (JSON after '{"seq":N,'),
--       4 message id (the client message id when given), 5 ttl, 6 summary interval,
--       7 answers max, 8 now, 9 session max bytes
local m = redis.call('HMGET', KEYS[1], 'status', 'owner', 'fs_doc', 'seq', 'sc', 'lb', 'an', 'm:' .. ARGV[4])
if not m[1] then return {'missing'} end
-- an erased session's tombstone holds no owner: it answers 'erased' to everyone
if m[1] == 'erased' then return {'erased'} end
if ARGV[1] ~= '' and m[2] ~= ARGV[1] then return {'forbidden'} end
if m[1] ~= 'active' then return {'ended', m[1]} end
-- Exactly once per message id, for the session's whole life: a client retry with the same
-- client_message_id, a redis-py retry after a lost reply, or a merge after an outage all
-- find it here. The value is the message's number, with '!' if its append claimed a summary.
if m[8] then return {'dup', m[8]} end
local seq = tonumber(m[4] or '0') + 1
local msg = '{"seq":' .. seq .. ',' .. ARGV[3]
-- The session's bytes are a ledger, not MEMORY USAGE (no extra command): each message
-- counts its length plus a quarter (the allocator's size classes) plus 64 (list-node
-- overhead), and its id field; an upper bound of what Redis counts (tests/store/test_bounds.py).
local lb = tonumber(m[6] or '0') + math.floor(#msg * 5 / 4) + 64 + #ARGV[4] + 16
local an = tonumber(m[7] or '0')
if ARGV[2] == 'assistant' then an = an + 1 end
if an > tonumber(ARGV[7]) or lb > tonumber(ARGV[9]) then return {'full'} end
redis.call('RPUSH', KEYS[2], msg)
-- Exactly one append gets each multiple of the interval: the summary claim is the
-- sequence number itself, assigned atomically here, so no other instance can claim it.
local due = 0
local mark = tostring(seq)
if seq % tonumber(ARGV[6]) == 0 then due = 1; mark = mark .. '!' end
redis.call('HSET', KEYS[1], 'seq', seq, 'last_active_at', ARGV[8], 'lb', lb, 'an', an, 'm:' .. ARGV[4], mark)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[5])) end
-- 1: the session has no Firestore document yet (created while Firestore was down)
local nodoc = 0
if m[3] == '0' then nodoc = 1 end
if due == 1 then
  -- the summarizer's input: the messages after the last one the stored summary covers
  local after = seq - tonumber(m[5] or '0')
  return {'ok', seq, due, nodoc, redis.call('GET', KEYS[3]) or '', redis.call('LRANGE', KEYS[2], -after, -1)}
end
return {'ok', seq, due, nodoc}
