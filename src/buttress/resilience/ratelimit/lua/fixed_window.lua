-- Fixed window: one decision, atomically, on the server's clock.
-- KEYS[1] hash {w = window index, c = units admitted in it}
-- ARGV: now ('' = server TIME), cost, limit, window
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local cost = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local key = KEYS[1]
local w = math.floor(now / window)
local state = redis.call('HMGET', key, 'w', 'c')
local count = 0
if state[1] and tonumber(state[1]) == w then count = tonumber(state[2]) end
local reset_after = (w + 1) * window - now
if cost > limit then
  return string.format('%d %d %s %s', 0, limit - count, 'inf', string.format('%.17g', reset_after))
end
if count + cost > limit then
  local reset = string.format('%.17g', reset_after)
  return string.format('%d %d %s %s', 0, limit - count, reset, reset)
end
if count == 0 then
  -- a window starts: the key ends with it (HINCRBY later keeps the TTL)
  redis.call('HSET', key, 'w', string.format('%.17g', w), 'c', cost)
  redis.call('PEXPIRE', key, math.ceil(reset_after * 1000) + 1000)
else
  redis.call('HINCRBY', key, 'c', cost)
end
return string.format('%d %d %s %s', 1, limit - count - cost, '0', string.format('%.17g', reset_after))
