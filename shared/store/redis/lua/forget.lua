-- Remove the placeholder an expiry put in place, if its end failed (never a live session).
-- KEYS: 1 meta
if redis.call('HGET', KEYS[1], 'status') ~= 'expiring' then return 0 end
redis.call('DEL', KEYS[1])
return 1
