-- Marks a claimed job done, if the claim still holds.
-- KEYS: processing list, job hash, stats hash. ARGV: id, token, now, ttl seconds
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then
  return 0
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'done', 'updated_at', ARGV[3])
redis.call('HDEL', KEYS[2], 'token', 'lease_until')
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], 'processed', 1)
return 1
