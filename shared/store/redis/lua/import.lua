-- Bring messages accepted by another layer during a Redis outage into Redis.
-- Their numbers there only ordered them among themselves (no layer but Redis knew the
-- session's sequence during the outage), so each is appended here as append.lua would,
-- with a fresh sequence number after everything Redis holds: acceptance order is pre-outage
-- messages, outage messages, then later ones. The 'm:' id field append.lua also keeps makes
-- the merge exactly-once per message, whichever instance does it, however often. Nothing
-- accepted is refused here: the layers that accepted them kept the session's bounds (each
-- within the bound, not knowing this ledger: the merged session holds at most its bytes
-- here plus the bound), and the ledger shows it. A merge is several calls of this script
-- (layer.py ``import_steps``: at most 256 KiB each), each exactly-once by itself.
-- KEYS: 1 meta, 2 log, 3 sum
-- ARGV: 1 JSON array of {mid, role, tail} in their acceptance order (one step); 2 ttl,
--       3 summary interval, 4 the end attempt's token ('' = none)
-- Returns {-1} if Redis does not know the session, {-2} if it is ending or ended: an end's
-- snapshot is taken, so what is merged now would be deleted with the caches (the ending
-- attempt itself, holding the token, may still bring in what arrived after its snapshot).
local st = redis.call('HMGET', KEYS[1], 'status', 'end_token', 'seq', 'sc', 'lb', 'an')
if not st[1] then return {-1} end
if st[1] ~= 'active' and not (st[1] == 'ending' and ARGV[4] ~= '' and st[2] == ARGV[4]) then
  return {-2}
end
local seq, sc = tonumber(st[3] or '0'), tonumber(st[4] or '0')
local lb, an = tonumber(st[5] or '0'), tonumber(st[6] or '0')
local items = cjson.decode(ARGV[1])
local added, due = 0, 0
for _, it in ipairs(items) do
  if redis.call('HEXISTS', KEYS[1], 'm:' .. it.mid) == 0 then
    seq = seq + 1
    local msg = '{"seq":' .. seq .. ',' .. it.tail
    redis.call('RPUSH', KEYS[2], msg)
    redis.call('HSET', KEYS[1], 'm:' .. it.mid, tostring(seq))
    lb = lb + math.floor(#msg * 5 / 4) + 64 + #it.mid + 16
    if it.role == 'assistant' then an = an + 1 end
    if seq % tonumber(ARGV[3]) == 0 then due = seq end
    added = added + 1
  end
end
redis.call('HSET', KEYS[1], 'seq', seq, 'lb', lb, 'an', an)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2])) end
if due > 0 then
  return {added, due, redis.call('GET', KEYS[3]) or '', redis.call('LRANGE', KEYS[2], -(seq - sc), -1)}
end
return {added, 0}
