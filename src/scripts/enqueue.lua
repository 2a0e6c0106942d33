-- Creates a job and queues its id, unless a job with that id exists (a client retrying
-- with the same id): then returns the existing one and queues nothing.
-- KEYS: job hash, queue, recent list. ARGV: id, name, now, recent length
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('LLEN', KEYS[2]), redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'status', 'queued',
           'attempts', 0, 'enqueued_at', ARGV[3], 'updated_at', ARGV[3])
local length = redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], 0, ARGV[4] - 1)
return {1, length, {}}
