-- Takes back the jobs of workers whose heartbeat expired, and jobs whose lease ran out.
-- The caller read the consumers and their processing lists; every condition is checked
-- again here on the keys passed, so an item that left a list since is skipped, and items
-- or consumers that appeared since wait for the next pass. nil if the dead list's tail
-- changed (see dead.lua).
-- KEYS: consumers set, queue, dead list, stats hash; per consumer: its instance hash,
--       its processing list, its items' job hashes; then the dead tail's hashes
-- ARGV: tail start, tail length, now, max attempts, dead max, consumer count;
--       per consumer: name, item count, items; then the dead tail's ids
if not tail_unchanged(KEYS[3]) then
  return false
end
local now = tonumber(ARGV[3])
local max_attempts, dead_max = tonumber(ARGV[4]), tonumber(ARGV[5])
local requeued, dead = 0, 0
local k, a = 5, 7
for _ = 1, tonumber(ARGV[6]) do
  local worker, count = ARGV[a], tonumber(ARGV[a + 1])
  local alive = redis.call('EXISTS', KEYS[k]) == 1
  local list = KEYS[k + 1]
  a, k = a + 2, k + 2
  for i = 0, count - 1 do
    local item, key = ARGV[a + i], KEYS[k + i]
    if redis.call('LPOS', list, item) then
      local lease = tonumber(redis.call('HGET', key, 'lease_until'))
      local why
      if not alive then
        why = 'worker ' .. worker .. ' lost: it stopped sending heartbeats'
      elseif lease and now >= lease then
        why = 'worker ' .. worker .. ' lost its lease: it stopped renewing its claim'
      end
      if why then
        local buried = release(list, item, key, KEYS[2], KEYS[3], KEYS[4], ARGV[3], why,
                               max_attempts, dead_max)
        dead = dead + buried
        requeued = requeued + 1 - buried
      end
    end
  end
  a, k = a + count, k + count
  if not alive and redis.call('LLEN', list) == 0 then
    redis.call('SREM', KEYS[1], worker)
  end
end
return {requeued, dead}
