-- Shared request and token rate limits of one model (GCRA: a theoretical arrival time per
-- limit). acquire takes one request and `tokens` tokens if both limits allow, else nothing.
-- KEYS: request tat key, token tat key
-- ARGV: op (acquire | settle), now ms, requests per minute (0 = none), tokens per minute
--       (0 = none), tokens (acquire: reserved; settle: correction, may be negative)
-- acquire returns the milliseconds to wait (0 = granted).
local now = tonumber(ARGV[2])
local rpm, tpm, tokens = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local function plan(key, limit, cost)
  if limit <= 0 or cost <= 0 then
    return nil
  end
  local interval = 60000 / limit
  local increment = interval * cost
  -- A burst of one second's worth, and never less than this request.
  local burst = math.max(interval * math.max(limit / 60, 1), increment)
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
  local new_tat = tat + increment
  return {key = key, new_tat = new_tat, wait = new_tat - burst - now}
end

if ARGV[1] == 'settle' then
  if tpm > 0 and tokens ~= 0 then
    local tat = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now)
    local adjusted = math.max(tat + (60000 / tpm) * tokens, now)
    redis.call('SET', KEYS[2], tostring(adjusted), 'PX', math.max(math.ceil(adjusted - now), 1) + 60000)
  end
  return 0
end

local plans = {plan(KEYS[1], rpm, 1), plan(KEYS[2], tpm, tokens)}
local wait = 0
for _, p in pairs(plans) do
  if p.wait > wait then
    wait = p.wait
  end
end
if wait > 0 then
  return math.ceil(wait)
end
for _, p in pairs(plans) do
  redis.call('SET', p.key, tostring(p.new_tat), 'PX', math.ceil(p.new_tat - now) + 60000)
end
return 0
