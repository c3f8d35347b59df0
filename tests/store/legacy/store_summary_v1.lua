-- Store a rolling summary only if it covers more than the stored one (compare and set),
-- then drop the messages it covers from the summarizer's input list.
-- KEYS: 1 meta, 2 msgs, 3 pend, 4 ana, 5 cmid, 6 sum
-- ARGV: 1 summary JSON, 2 covered seq, 3 ttl
-- Only into an active session: once an end took its snapshot the caches are about to go.
if redis.call('HGET', KEYS[1], 'status') ~= 'active' then return 0 end
local cur = redis.call('GET', KEYS[6])
local covered = tonumber(ARGV[2])
if cur then
  local c = tonumber(string.match(cur, '"message_count":(%d+)'))
  if c and c >= covered then return 0 end
end
redis.call('SET', KEYS[6], ARGV[1], 'EX', tonumber(ARGV[3]))
while true do
  local head = redis.call('LINDEX', KEYS[3], 0)
  if not head then break end
  local s = tonumber(string.match(head, '^{"seq":(%d+),'))
  if s == nil or s > covered then break end
  redis.call('LPOP', KEYS[3])
end
return 1
