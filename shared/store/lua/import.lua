-- Bring messages accepted by another layer during a Redis outage back into Redis,
-- merged by sequence number, skipping any already present (by message id).
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 JSON array of {"seq","mid","msg","ana"?,"cmid"?} sorted by seq, 2 window, 3 ttl
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local items = cjson.decode(ARGV[1])
local function seq_of(s) return tonumber(string.match(s, '^{"seq":(%d+),')) end
local function merge(key, add, cap)
  local cur = redis.call('LRANGE', key, 0, -1)
  local seen = {}
  for _, s in ipairs(cur) do seen[string.match(s, '"mid":"([^"]*)"') or s] = true end
  local all = {}
  for _, s in ipairs(cur) do table.insert(all, s) end
  local n = 0
  for _, s in ipairs(add) do
    local mid = string.match(s, '"mid":"([^"]*)"') or s
    if not seen[mid] then table.insert(all, s); seen[mid] = true; n = n + 1 end
  end
  if n == 0 then return 0 end
  table.sort(all, function(a, b) return seq_of(a) < seq_of(b) end)
  if cap > 0 and #all > cap then
    local keep = {}
    for i = #all - cap + 1, #all do table.insert(keep, all[i]) end
    all = keep
  end
  redis.call('DEL', key)
  redis.call('RPUSH', key, unpack(all))
  return n
end
local msgs, anas, maxseq = {}, {}, 0
for _, it in ipairs(items) do
  table.insert(msgs, it.msg)
  if it.ana then table.insert(anas, it.ana) end
  if it.cmid then
    redis.call('HSETNX', KEYS[5], it.cmid, '{"seq":' .. it.seq .. ',"summary_due":0}')
  end
  if it.seq > maxseq then maxseq = it.seq end
end
local added = merge(KEYS[2], msgs, tonumber(ARGV[2]))
merge(KEYS[3], msgs, 0)
merge(KEYS[4], anas, 0)
-- The newest message decides what the next assistant answer answers.
local last = redis.call('LINDEX', KEYS[2], -1)
if last then
  local d = cjson.decode(last)
  if d.role == 'user' then
    redis.call('HSET', KEYS[1], 'pending_query', cjson.encode(d.content))
  elseif d.role == 'assistant' then
    redis.call('HDEL', KEYS[1], 'pending_query')
  end
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if maxseq > cur then redis.call('HSET', KEYS[1], 'seq', maxseq) end
for i = 1, 6 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
return added
