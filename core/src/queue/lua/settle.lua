-- Takes a job out of delivery: counts it as completed or failed, keeps a dead-letter record,
-- or just drops it.
-- KEYS: jobs, inflight, dead (hash id -> record), completed (counter), failed (counter)
-- ARGV: id, kind (completed | failed | dropped | dead), [dead-letter record]
redis.call('ZREM', KEYS[2], ARGV[1])
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == 'dead' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
elseif removed == 1 and ARGV[2] == 'completed' then
  redis.call('INCR', KEYS[4])
elseif removed == 1 and ARGV[2] == 'failed' then
  redis.call('INCR', KEYS[5])
end
return removed
