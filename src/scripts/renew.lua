-- Extends a claim's lease, if the claim still holds.
-- KEYS: job hash. ARGV: token, lease until (ms)
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
return 1
