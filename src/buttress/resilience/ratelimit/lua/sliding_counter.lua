-- Sliding window counter (approximate): one decision, atomically, on the server's clock.
-- KEYS[1] hash {w = current window index, c = its count, p = the previous window's count}
-- ARGV: now ('' = server TIME), cost, limit, window
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local cost = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local TOLERANCE = 1e-9
local key = KEYS[1]
local w = math.floor(now / window)
local state = redis.call('HMGET', key, 'w', 'c', 'p')
local cur = 0
local prev = 0
local same_window = false
if state[1] then
  local stored = tonumber(state[1])
  if stored == w then
    same_window = true
    cur = tonumber(state[2])
    prev = tonumber(state[3])
  elseif stored == w - 1 then
    prev = tonumber(state[2])
  end
end
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
  redis.call('HSET', key, 'w', string.format('%.17g', w), 'c', cur, 'p', prev)
  -- HSET keeps a key's TTL, set when the window started: (w + 2) * window does not move within it
  if not same_window then redis.call('PEXPIRE', key, math.ceil(reset_after * 1000) + 1000) end
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
return string.format('%d %d %s %s', allowed, remaining, string.format('%.17g', retry_after), string.format('%.17g', reset_after))
