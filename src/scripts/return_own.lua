-- Returns everything in one worker's own processing list to the queue, and registers the
-- worker as a consumer (or, when it leaves, unregisters it). The caller read the list;
-- nil if it or the dead list's tail changed since (see dead.lua): then it reads again.
-- KEYS: processing list, queue, consumers set, dead list, stats hash,
--       the items' job hashes, then the dead tail's hashes
-- ARGV: tail start, tail length, now, why, worker, '1' to register or '0' to leave,
--       max attempts, dead max, item count, the items, then the dead tail's ids
if not tail_unchanged(KEYS[4]) then
  return false
end
local count = tonumber(ARGV[9])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items ~= count then
  return false
end
for i = 1, count do
  if items[i] ~= ARGV[9 + i] then
    return false
  end
end
for i = 1, count do
  release(KEYS[1], items[i], KEYS[5 + i], KEYS[2], KEYS[4], KEYS[5], ARGV[3], ARGV[4],
          tonumber(ARGV[7]), tonumber(ARGV[8]))
end
if ARGV[6] == '1' then
  redis.call('SADD', KEYS[3], ARGV[5])
else
  redis.call('SREM', KEYS[3], ARGV[5])
end
return count
