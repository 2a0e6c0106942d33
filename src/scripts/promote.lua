-- Moves failed jobs whose retry time has come back to the tail of the queue. The caller
-- read the due ids; one another worker promoted meanwhile, or that failed again and waits
-- for a later retry, is left alone. Returns how many moved.
-- KEYS: delayed set, queue, then the due jobs' hashes. ARGV: now, then the due ids
local moved = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local due = tonumber(redis.call('ZSCORE', KEYS[1], id))
  if due and due <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('RPUSH', KEYS[2], id)
    if redis.call('EXISTS', KEYS[i + 1]) == 1 then
      redis.call('HSET', KEYS[i + 1], 'status', 'queued', 'updated_at', ARGV[1])
    end
    moved = moved + 1
  end
end
return moved
