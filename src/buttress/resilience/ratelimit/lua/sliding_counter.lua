-- Sliding window counter (approximate): one decision, atomically, on the server's clock.
-- KEYS[1] hash: field = window index w, value = units admitted in that window. The key expires
-- when the window after the current one ends; the first admission of a window drops any field
-- older than the previous window's, so the hash holds at most two fields.
-- ARGV: cost[, now]
-- Locals set by the prelude plan_for() prepends: cost, now (the server's TIME unless a
-- test pins it) and the rule's constants (limit, window (seconds)).
-- returns 'allowed remaining retry_after reset_after' (one string: one reply to parse)
-- Redis passes the numbers w - 1 and w to a command as their digits (w is integral).
local TOLERANCE = 1e-9
local key = KEYS[1]
local w = math.floor(now / window)
local state = redis.call('HMGET', key, w - 1, w)
local prev = tonumber(state[1]) or 0
local cur = tonumber(state[2]) or 0
local start = w * window
local estimate = prev * (1 - (now - start) / window) + cur
local allowed = 0
local retry_after = 0
local remaining
local reset_after = 0
if estimate + cost <= limit + TOLERANCE then
  allowed = 1
  cur = cur + cost
  remaining = math.floor(limit - estimate - cost + TOLERANCE)
  reset_after = start + 2 * window - now
  redis.call('HINCRBY', key, w, cost)
  if cur == cost then
    -- the window's first admission: (w + 2) * window, the key's end, does not move within it
    if redis.call('HLEN', key) > 2 then
      for _, field in ipairs(redis.call('HKEYS', key)) do
        local n = tonumber(field)
        if n ~= w and n ~= w - 1 then redis.call('HDEL', key, field) end
      end
    end
    redis.call('PEXPIRE', key, math.ceil(reset_after * 1000) + 1)
  end
else
  remaining = math.floor(limit - estimate + TOLERANCE)
  if prev > 0 or cur > 0 then reset_after = start + 2 * window - now end
  local done = false
  if cost > limit then
    retry_after = math.huge
    done = true
  elseif cur + cost <= limit and prev > 0 then
    -- within this window the estimate falls linearly as the previous window slides out
    local fraction = 1 - (limit - cost - cur) / prev
    if fraction < 1 then
      retry_after = math.max(0, start + fraction * window - now)
      done = true
    end
  end
  if not done then
    -- next window: previous = cur, current = 0, estimate = cur * (1 - f)
    local fraction = 0
    if cur > 0 then fraction = math.max(0, 1 - (limit - cost) / cur) end
    retry_after = start + window - now + fraction * window
  end
end
if remaining < 0 then remaining = 0 end
return string.format('%d %d %.17g %.17g', allowed, remaining, retry_after, reset_after)
