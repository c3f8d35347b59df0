-- Move one session from the six-key layout (before issue 15: meta, msgs, pend, ana, cmid,
-- sum) to the three-key one, with what redis_store.migrate_legacy rebuilt from those keys
-- (every message it held, once, in order, its ids, the ledger). Compare and set on the
-- session's sequence number: an instance of the old code appending meanwhile (during a
-- rolling deploy) changes it, and the caller reads again.
-- KEYS: 1 meta, 2 log, 3 sum, 4 msgs, 5 pend, 6 ana, 7 cmid
-- ARGV: 1 the seq the keys were read at, 2 '1': the session is of the new layout already
--       (a later pass merging what old instances wrote after it moved), 3 the log entries
--       (JSON array), 4 the meta fields to set (JSON array of name, value, ...)
local m = redis.call('HMGET', KEYS[1], 'v', 'seq', 'status')
if not m[3] then return 0 end
local moved = m[1] and true or false
if moved ~= (ARGV[2] == '1') then return 0 end
if (m[2] or '0') ~= ARGV[1] then return -1 end
local pttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[2])
local entries = cjson.decode(ARGV[3])
for i = 1, #entries, 500 do
  redis.call('RPUSH', KEYS[2], unpack(entries, i, math.min(i + 499, #entries)))
end
local fields = cjson.decode(ARGV[4])
for i = 1, #fields, 500 do
  redis.call('HSET', KEYS[1], unpack(fields, i, math.min(i + 499, #fields)))
end
redis.call('HSET', KEYS[1], 'v', '2')
redis.call('HDEL', KEYS[1], 'pending_query')
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])
if pttl > 0 then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], pttl) end
end
return 1
