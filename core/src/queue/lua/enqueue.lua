-- Adds jobs whose ids are new; wakes up to 64 idle workers.
-- KEYS: jobs (hash id -> payload), ready (list), wake (list)
-- ARGV: id1, payload1, id2, payload2, ...
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('LPUSH', KEYS[2], ARGV[i])
    added = added + 1
  end
end
for _ = 1, math.min(added, 64) do
  redis.call('LPUSH', KEYS[3], 1)
end
redis.call('LTRIM', KEYS[3], 0, 63)
return added
