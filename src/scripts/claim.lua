-- Turns an item BLMOVE put in this worker's processing list into a claim.
-- KEYS: processing list, consumers set, recent list, dead list,
--       the job hash the item names, the job hash of the fresh id
-- ARGV: item, worker, token, now, fresh id, name limit, recent length, lease until (ms)
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return false -- a reclaimer took it back since BLMOVE: not ours any more
end
local id, key = ARGV[1], KEYS[5]
if redis.call('EXISTS', key) == 0 then
  -- a plain string pushed by hand: a new job named after it
  id, key = ARGV[5], KEYS[6]
  redis.call('HSET', key, 'id', id, 'name', string.sub(ARGV[1], 1, tonumber(ARGV[6])),
             'attempts', 0, 'enqueued_at', ARGV[4])
  redis.call('LREM', KEYS[1], 1, ARGV[1])
  redis.call('RPUSH', KEYS[1], id)
  redis.call('LPUSH', KEYS[3], id)
  redis.call('LTRIM', KEYS[3], 0, ARGV[7] - 1)
end
if redis.call('HGET', key, 'status') == 'dead' then
  redis.call('LREM', KEYS[4], 0, id) -- a dead job's id pushed by hand: live again
end
local attempt = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'status', 'processing', 'worker', ARGV[2], 'token', ARGV[3],
           'lease_until', ARGV[8], 'updated_at', ARGV[4])
redis.call('PERSIST', key) -- live again if a done job's id was pushed by hand
redis.call('SADD', KEYS[2], ARGV[2])
return {id, redis.call('HGET', key, 'name') or id, attempt}
