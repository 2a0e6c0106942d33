-- The most recent jobs and the lengths, for GET /jobs (see lengths.lua); nil if the
-- consumers changed. Jobs whose hash has expired are left out.
-- KEYS: as lengths.lua, then the recent jobs' hashes. ARGV: as lengths.lua
local counts = lengths()
if not counts then
  return false
end
local jobs = {}
for i = 5 + tonumber(ARGV[1]), #KEYS do
  local fields = redis.call('HGETALL', KEYS[i])
  if #fields > 0 then
    table.insert(jobs, fields)
  end
end
return {jobs, counts}
