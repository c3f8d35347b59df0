#!lua flags=allow-oom
-- An end attempt gives up. Only the attempt that marked the session 'ending' may do this.
-- reopen '1': its Firestore write is known not to have happened; the session is active again.
-- reopen '0': whether it happened is unknown; the session stays 'ending' (nothing can be
-- accepted that the committed end might miss) but any later end may take over at once.
-- KEYS: 1 meta
-- ARGV: 1 the attempt's token, 2 reopen ('1' or '0')
local m = redis.call('HMGET', KEYS[1], 'status', 'end_token')
if m[1] ~= 'ending' or m[2] ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'active')
  redis.call('HDEL', KEYS[1], 'end_token', 'ending_since')
else
  redis.call('HSET', KEYS[1], 'end_token', '')
end
return 1
