-- Forgets a job (ack), or moves it to the dead letters when a record is given.
-- KEYS: jobs, inflight, dead (hash id -> record)   ARGV: id, [dead-letter record]
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
end
return redis.call('HDEL', KEYS[1], ARGV[1])
