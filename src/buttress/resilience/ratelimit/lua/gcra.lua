-- GCRA: one decision, atomically, on the server's clock.
-- KEYS[1] string: the theoretical arrival time (TAT)
-- ARGV: cost[, now]
-- Locals set by the prelude plan_for() prepends: cost, now (the server's TIME unless a
-- test pins it) and the rule's constants (T (emission interval), tau (= T * burst), burst).
local TOLERANCE = 1e-9
local key = KEYS[1]
local tat = tonumber(redis.call('GET', key) or now)
local base = math.max(tat, now)
local new_tat = base + T * cost
local allowed = 0
local retry_after = 0
local tat_after = base
if new_tat - now <= tau + TOLERANCE then
  allowed = 1
  tat_after = new_tat
  redis.call('SET', key, new_tat, 'PX', math.ceil((new_tat - now) * 1000) + 1000)
elseif cost > burst then
  retry_after = math.huge
else
  retry_after = new_tat - tau - now
end
local remaining = math.floor((tau - (tat_after - now)) / T + TOLERANCE)
if remaining < 0 then remaining = 0 end
local reset_after = tat_after - now
if reset_after < 0 then reset_after = 0 end
return string.format('%d %d %.17g %.17g', allowed, remaining, retry_after, reset_after)
