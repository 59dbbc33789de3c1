-- Takes a job out of its lease and delivers it again at a due time; wakes one idle worker so
-- it can plan its wait around the new due time.
-- KEYS: jobs, inflight, delayed, wake   ARGV: id, payload, due ms
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
redis.call('LPUSH', KEYS[4], 1)
redis.call('LTRIM', KEYS[4], 0, 63)
return 1
