-- Move one session from the six-key layout (before issue 15: meta, msgs, pend, ana, cmid,
-- sum) to the three-key one, with what redis_store.migrate_legacy rebuilt from those keys
-- (every message it held, once, in order, its ids, the ledger). Compare and set on the
-- session's sequence number: an instance of the old code appending meanwhile (during a
-- rolling deploy) changes it, and the caller reads again.
-- KEYS: 1 meta, 2 log, 3 sum, 4 msgs, 5 pend, 6 ana, 7 cmid
-- ARGV: 1 the seq the keys were read at, 2 '1': the session is of the new layout already
--       (a later pass merging what old instances wrote after it moved), 3 the log entries
--       (JSON array), 4 the meta fields to set where absent (JSON array of name, value, ...),
--       5 the summary's covered number, 6 ttl (if meta had none), 7 the ledger, 8 the answers
local m = redis.call('HMGET', KEYS[1], 'v', 'seq', 'status', 'sc')
if not m[3] then return 0 end
-- only a live session moves: an ended or erased one holds nothing to bring along
if m[3] ~= 'active' and m[3] ~= 'ending' then return 0 end
local moved = m[1] and true or false
if moved ~= (ARGV[2] == '1') then return 0 end
if (m[2] or '0') ~= ARGV[1] then return -1 end
local pttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[2])
local entries = cjson.decode(ARGV[3])
for i = 1, #entries, 500 do
  redis.call('RPUSH', KEYS[2], unpack(entries, i, math.min(i + 499, #entries)))
end
-- ids already there keep their value (a summary claim's '!' mark among them)
local fields = cjson.decode(ARGV[4])
for i = 1, #fields, 2 do redis.call('HSETNX', KEYS[1], fields[i], fields[i + 1]) end
-- the summary's covered number only grows (a summary stored meanwhile stays)
local sc = math.max(tonumber(m[4] or '0'), tonumber(ARGV[5]))
redis.call('HSET', KEYS[1], 'v', '2', 'sc', sc, 'lb', ARGV[7], 'an', ARGV[8])
redis.call('HDEL', KEYS[1], 'pending_query')
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7])
if pttl <= 0 then pttl = tonumber(ARGV[6]) * 1000 end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], pttl) end
return 1
