-- Token bucket: one decision, atomically, on the server's clock.
-- KEYS[1] hash {tk = tokens, ts = time of tk}
-- ARGV: cost[, now]
-- Locals set by the prelude plan_for() prepends: cost, now (the server's TIME unless a
-- test pins it) and the rule's constants (rate (tokens per second), burst).
-- returns 'allowed remaining retry_after reset_after' (one string: one reply to parse)
local TOLERANCE = 1e-9
local key = KEYS[1]
local state = redis.call('HMGET', key, 'tk', 'ts')
local tokens = burst
if state[1] then
  local elapsed = now - tonumber(state[2])
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tonumber(state[1]) + elapsed * rate)
end
local allowed = 0
local retry_after = 0
if tokens + TOLERANCE >= cost then
  allowed = 1
  tokens = tokens - cost
  if tokens < 0 then tokens = 0 end
elseif cost > burst then
  retry_after = math.huge
else
  retry_after = (cost - tokens) / rate
end
-- a refusal stores the refilled bucket too, so both backends round alike
redis.call('HSET', key, 'tk', tokens, 'ts', now)
-- once full again the key is indistinguishable from a missing one
redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
return string.format('%d %d %.17g %.17g', allowed, math.floor(tokens + TOLERANCE), retry_after,
  (burst - tokens) / rate)
