-- Shared by the scripts that reclaim (reclaim, return_own); needs dead.lua before it.
--
-- Takes an item out of a processing list and deletes its claim token, so the worker that
-- had it can no longer complete or fail it. A job that was claimed lost its run, which
-- counted as an attempt: on the last one it goes to the dead-letter list; anything else
-- goes back to the head of the queue. Returns 1 if the job went dead. `key` is the job
-- hash the item names; `why` becomes the job's `last_error`.
local function release(list, item, key, queue, dead, stats, now, why, max_attempts, dead_max)
  redis.call('LREM', list, 1, item)
  if redis.call('EXISTS', key) == 0 then
    redis.call('LPUSH', queue, item)
    return 0
  end
  local claimed = redis.call('HEXISTS', key, 'token') == 1
  local attempts = tonumber(redis.call('HGET', key, 'attempts')) or 0
  redis.call('HDEL', key, 'token', 'lease_until')
  if claimed and attempts >= max_attempts then
    redis.call('HSET', key, 'updated_at', now, 'last_error',
               why .. '; that was attempt ' .. attempts .. ' of ' .. max_attempts)
    bury(dead, item, key, dead_max)
    redis.call('HINCRBY', stats, 'dead', 1)
    return 1
  end
  redis.call('HSET', key, 'status', 'queued', 'updated_at', now, 'last_error', why)
  redis.call('HDEL', key, 'worker')
  redis.call('LPUSH', queue, item)
  return 0
end
