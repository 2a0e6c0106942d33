-- Shared by overview and stats, which load it in front of their own text.
--
-- Queue, processing, delayed and dead lengths, or nil if the consumers set changed since
-- the caller read it (then it reads again): a job moving into a new worker's list would
-- otherwise be counted nowhere.
-- KEYS[1..4]: queue, delayed set, dead list, consumers set; KEYS[5..4+n]: the consumers'
-- processing lists. ARGV[1]: n; ARGV[2..1+n]: the consumers' names.
local function lengths()
  local n = tonumber(ARGV[1])
  if redis.call('SCARD', KEYS[4]) ~= n then
    return nil
  end
  local processing = 0
  for i = 1, n do
    if redis.call('SISMEMBER', KEYS[4], ARGV[1 + i]) == 0 then
      return nil
    end
    processing = processing + redis.call('LLEN', KEYS[4 + i])
  end
  return {redis.call('LLEN', KEYS[1]), processing,
          redis.call('ZCARD', KEYS[2]), redis.call('LLEN', KEYS[3])}
end
