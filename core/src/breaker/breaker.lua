-- A circuit breaker shared by every worker: closed -> open after `threshold` consecutive
-- failures; open -> half-open after `open_ms`, when one probe call is let through; the probe's
-- success closes it, its failure opens it again.
-- KEYS: the breaker hash
-- ARGV: op (acquire | success | failure), now ms, threshold, open ms, probe ms
-- acquire returns {verdict, deadline}: verdict 'allow', 'probe' or 'open' (deadline = retry time).
-- success/failure return {state before, state after}.
local key, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local threshold, open_ms, probe_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HGET', key, 'state') or 'closed'
local deadline = tonumber(redis.call('HGET', key, 'deadline') or '0')

if op == 'acquire' then
  if state == 'closed' then
    return {'allow', '0'}
  end
  if state == 'half_open' and now < deadline then
    -- A probe is in flight: look again soon rather than at its deadline.
    return {'open', tostring(math.min(deadline, now + 1000))}
  end
  if now < deadline then
    return {'open', tostring(deadline)}
  end
  -- Open time is over, or the last probe never reported: let one probe through.
  redis.call('HSET', key, 'state', 'half_open', 'deadline', now + probe_ms)
  return {'probe', '0'}
end

if op == 'success' then
  redis.call('HSET', key, 'state', 'closed', 'failures', 0, 'deadline', 0)
  return {state, 'closed'}
end

local failures = redis.call('HINCRBY', key, 'failures', 1)
if state == 'half_open' or (state == 'closed' and failures >= threshold) then
  redis.call('HSET', key, 'state', 'open', 'deadline', now + open_ms)
  return {state, 'open'}
end
return {state, state}
