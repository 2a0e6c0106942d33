-- The fleet-wide counters and the lengths, for /metrics/fleet (see lengths.lua); nil if
-- the consumers changed.
-- KEYS: as lengths.lua, then the stats hash. ARGV: as lengths.lua
local counts = lengths()
if not counts then
  return false
end
return {redis.call('HMGET', KEYS[#KEYS], 'processed', 'failed', 'dead'), counts}
