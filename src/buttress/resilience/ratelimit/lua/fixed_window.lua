-- Fixed window: one decision, atomically, on the server's clock.
-- KEYS[1] hash: field = window index w, value = units admitted in that window. The key expires
-- when the current window ends; a window's first admission drops any older field (one can
-- outlive its window by the millisecond the expiry is rounded up to).
-- ARGV: cost[, now]
-- Locals set by the prelude plan_for() prepends: cost, now (the server's TIME unless a
-- test pins it) and the rule's constants (limit, window (seconds)).
-- returns 'allowed remaining retry_after reset_after' (one string: one reply to parse)
-- Admission is one HINCRBY (a refusal undoes it), so the hot path is TIME + HINCRBY; Redis
-- passes the number w to a command as its digits (w is integral).
local key = KEYS[1]
local w = math.floor(now / window)
local reset_after = (w + 1) * window - now
if cost > limit then
  local count = tonumber(redis.call('HGET', key, w) or 0)
  return string.format('0 %d inf %.17g', limit - count, reset_after)
end
local count = redis.call('HINCRBY', key, w, cost)
if count > limit then
  count = redis.call('HINCRBY', key, w, -cost)
  return string.format('0 %d %.17g %.17g', limit - count, reset_after, reset_after)
end
if count == cost then
  -- the window's first admission: the key lives until the window ends, with this field only
  if redis.call('HLEN', key) > 1 then
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if tonumber(field) ~= w then redis.call('HDEL', key, field) end
    end
  end
  redis.call('PEXPIRE', key, math.ceil(reset_after * 1000) + 1)
end
return string.format('1 %d 0 %.17g', limit - count, reset_after)
