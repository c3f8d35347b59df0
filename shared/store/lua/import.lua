-- Bring messages accepted by another layer during a Redis outage into Redis.
-- Their numbers there only ordered them among themselves (no layer but Redis knew the
-- session's sequence during the outage), so each is appended here as append.lua would,
-- with a fresh sequence number after everything Redis holds: acceptance order is pre-outage
-- messages, outage messages, then later ones. A 'mid:' marker in the cmid hash makes the
-- merge exactly-once per message (the 'mid:' field append.lua also keeps), whichever
-- instance does it, however often.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 JSON array of {mid, role, tail, content_json?, ana_tail?, query_json?}
--       in their acceptance order; 2 window, 3 ttl, 4 summary interval, 5 pend max,
--       6 the end attempt's token ('' = none)
-- Returns {-1} if Redis does not know the session, {-2} if it is ending or ended: an end's
-- snapshot is taken, so what is merged now would be deleted with the caches (the ending
-- attempt itself, holding the token, may still bring in what arrived after its snapshot).
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local st = redis.call('HMGET', KEYS[1], 'status', 'end_token')
if st[1] ~= 'active' and not (st[1] == 'ending' and ARGV[6] ~= '' and st[2] == ARGV[6]) then
  return {-2}
end
local items = cjson.decode(ARGV[1])
local added, due = 0, 0
for _, it in ipairs(items) do
  if redis.call('HEXISTS', KEYS[5], 'mid:' .. it.mid) == 0 then
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('HSET', KEYS[5], 'mid:' .. it.mid, '{"seq":' .. seq .. ',"summary_due":0}')
    local msg = '{"seq":' .. seq .. ',' .. it.tail
    redis.call('RPUSH', KEYS[2], msg)
    redis.call('RPUSH', KEYS[3], msg)
    if it.role == 'user' then
      redis.call('HSET', KEYS[1], 'pending_query', it.content_json)
    elseif it.role == 'assistant' then
      local q = it.query_json
      if type(q) ~= 'string' then q = redis.call('HGET', KEYS[1], 'pending_query') or 'null' end
      redis.call('RPUSH', KEYS[4], '{"seq":' .. seq .. ',"query":' .. q .. ',' .. it.ana_tail)
      redis.call('HDEL', KEYS[1], 'pending_query')
    end
    if seq % tonumber(ARGV[4]) == 0 then due = seq end
    added = added + 1
  end
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
if due > 0 then
  return {added, due, redis.call('GET', KEYS[6]) or '', redis.call('LRANGE', KEYS[3], 0, -1)}
end
return {added, 0}
