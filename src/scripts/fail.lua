-- Records a failed attempt, if the claim still holds: the job waits in the delayed set
-- for its retry, or goes to the dead-letter list when no retry is left (see dead.lua for
-- the tail arguments; nil if the tail changed).
-- KEYS: processing list, job hash, stats hash, delayed set, dead list, then the tail's hashes
-- ARGV: tail start, tail length, id, token, now, error,
--       retry at (ms; empty: no retry left), dead max, then the tail's ids
if not tail_unchanged(KEYS[5]) then
  return false
end
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[4] then
  return 0
end
redis.call('LREM', KEYS[1], 1, ARGV[3])
redis.call('HSET', KEYS[2], 'last_error', ARGV[6], 'updated_at', ARGV[5])
redis.call('HDEL', KEYS[2], 'token', 'lease_until')
redis.call('HINCRBY', KEYS[3], 'failed', 1)
local retry_at = tonumber(ARGV[7])
if retry_at then
  redis.call('HSET', KEYS[2], 'status', 'failed')
  redis.call('ZADD', KEYS[4], retry_at, ARGV[3])
else
  bury(KEYS[5], ARGV[3], KEYS[2], tonumber(ARGV[8]))
  redis.call('HINCRBY', KEYS[3], 'dead', 1)
end
return 1
