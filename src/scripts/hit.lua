-- Counts one hit on a session and on the global counter, atomically, in one round trip.
-- KEYS: session counter, global counter. ARGV: session TTL (seconds)
local s = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local g = redis.call('INCR', KEYS[2])
return {s, g}
