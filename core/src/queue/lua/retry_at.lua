-- Takes a job out of its lease and delivers it again at a due time.
-- KEYS: jobs, inflight, delayed   ARGV: id, payload, due ms
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
return 1
