-- Promotes due delayed jobs and expired leases (in bounded chunks, so a large backlog never
-- exceeds Lua's limits), then leases up to `max` ready jobs.
-- KEYS: jobs (hash), ready (list), delayed (zset due ms), inflight (zset lease deadline ms)
-- ARGV: now ms, lease ms, max jobs
-- Returns a flat list: id1, payload1, id2, payload2, ...
local now = tonumber(ARGV[1])
local deadline = now + tonumber(ARGV[2])
for _, source in ipairs({KEYS[3], KEYS[4]}) do
  local ids = redis.call('ZRANGEBYSCORE', source, '-inf', now, 'LIMIT', 0, 200)
  for _, id in ipairs(ids) do
    redis.call('ZREM', source, id)
    redis.call('RPUSH', KEYS[2], id)
  end
end
local leased = {}
local wanted = tonumber(ARGV[3])
while #leased < wanted * 2 do
  local id = redis.call('RPOP', KEYS[2])
  if not id then
    break
  end
  local payload = redis.call('HGET', KEYS[1], id)
  if payload then
    redis.call('ZADD', KEYS[4], deadline, id)
    leased[#leased + 1] = id
    leased[#leased + 1] = payload
  end
end
return leased
