-- Shared by the scripts that may put jobs in the dead-letter list (fail, reclaim,
-- return_own), which load it in front of their own text.
--
-- The dead list keeps at most `max` ids: the ids trimmed off its end take their hashes
-- with them. Those hashes must be in KEYS, so the caller reads the tail of the list that
-- the script's burials could push off (from index ARGV[1]) and passes it: its ids as the
-- last ARGV[2] arguments, their hashes as the last ARGV[2] keys. A script first checks
-- with `tail_unchanged` that the tail is still what was read; if not, it changes nothing
-- and returns nil, and the caller reads again. ARGV[1] = -1 means the caller read nothing
-- because the script will bury nothing.

-- The job hash of every id the script may drop from the dead list.
local hash_of = {}

local function tail_unchanged(dead)
  local from, n = tonumber(ARGV[1]), tonumber(ARGV[2])
  if from < 0 then
    return true
  end
  local tail = redis.call('LRANGE', dead, from, -1)
  if #tail ~= n then
    return false
  end
  for i = 1, n do
    local id = ARGV[#ARGV - n + i]
    if tail[i] ~= id then
      return false
    end
    hash_of[id] = KEYS[#KEYS - n + i]
  end
  return true
end

-- Puts a job in the dead-letter list (an id at most once); a listed job's hash has no
-- TTL, so every listed id has its details and no dead job's details outlive its id.
local function bury(dead, id, key, max)
  hash_of[id] = key
  redis.call('HSET', key, 'status', 'dead')
  redis.call('PERSIST', key)
  redis.call('LREM', dead, 0, id)
  redis.call('LPUSH', dead, id)
  while redis.call('LLEN', dead) > max do
    local old = redis.call('RPOP', dead)
    local old_key = hash_of[old]
    if not old_key then
      -- cannot happen once tail_unchanged passed: the caller read too short a tail
      error('dead list: trimmed an id whose hash was not passed: ' .. old)
    end
    if redis.call('HGET', old_key, 'status') == 'dead' then
      redis.call('DEL', old_key)
    end
  end
end
