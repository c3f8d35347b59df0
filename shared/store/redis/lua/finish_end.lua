#!lua flags=allow-oom
-- The session document says ended: mark ended, keep the result for repeated ends, clear
-- the caches. While 'ending' nothing is accepted (appends, merges and summary stores all
-- refuse), so whichever attempt's snapshot was committed holds everything the caches hold.
-- A session found 'active' was reopened after the committed snapshot: it is marked ended
-- (nothing more is accepted) but its caches are left to the TTL, and the caller is told (2).
-- KEYS: 1 meta, 2 log, 3 sum, 4 recall, 5 corpus (the memory caches go with the others)
-- ARGV: 1 end result JSON, 2 ttl, 3... the state fields an ended session keeps
local status = redis.call('HGET', KEYS[1], 'status')
-- A session Redis does not know is answered from its document: a hash holding only the
-- result would lack the owner, and every owner check would refuse the owner.
if not status or status == 'ended' then return 0 end
-- an erase came between the end's commit and this: the tombstone stays
if status == 'erased' then return 0 end
if status == 'active' then
  redis.call('HSET', KEYS[1], 'status', 'ended', 'end_result', ARGV[1])
  redis.call('HDEL', KEYS[1], 'end_token', 'ending_since')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 2
end
-- the state hash keeps the session's own fields only: the ledgers and message ids go
local names = {}
for i = 3, #ARGV do names[#names + 1] = ARGV[i] end
local values = redis.call('HMGET', KEYS[1], unpack(names))
local f = {'status', 'ended', 'end_result', ARGV[1]}
for i, name in ipairs(names) do
  if values[i] and name ~= 'status' and name ~= 'end_result' then f[#f + 1] = name; f[#f + 1] = values[i] end
end
redis.call('DEL', unpack(KEYS))
redis.call('HSET', KEYS[1], unpack(f))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
