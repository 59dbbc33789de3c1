-- Promotes due delayed jobs and expired leases (in bounded chunks, so a large backlog never
-- exceeds Lua's limits), then leases the next ready job.
-- KEYS: jobs (hash), ready (list), delayed (zset due ms), inflight (zset lease deadline ms)
-- ARGV: now ms, lease ms
local now = tonumber(ARGV[1])
for _, source in ipairs({KEYS[3], KEYS[4]}) do
  local ids = redis.call('ZRANGEBYSCORE', source, '-inf', now, 'LIMIT', 0, 200)
  for _, id in ipairs(ids) do
    redis.call('ZREM', source, id)
    redis.call('RPUSH', KEYS[2], id)
  end
end
while true do
  local id = redis.call('RPOP', KEYS[2])
  if not id then
    return false
  end
  local payload = redis.call('HGET', KEYS[1], id)
  if payload then
    redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), id)
    return {id, payload}
  end
end
