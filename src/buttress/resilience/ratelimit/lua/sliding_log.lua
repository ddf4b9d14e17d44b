-- Sliding window log (exact): one decision, atomically, on the server's clock.
-- KEYS[1] sorted set: one member per admitted unit, scored by its time
-- KEYS[2] counter making members unique (same hash tag, so the same cluster slot)
-- ARGV: cost[, now]
-- Locals set by the prelude plan_for() prepends: cost, now (the server's TIME unless a
-- test pins it) and the rule's constants (limit, window (seconds)).
local key = KEYS[1]
local fmt = '%.17g'
-- the window is (now - window, now]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
local allowed = 0
local retry_after = 0
if cost > limit then
  retry_after = math.huge
elseif n + cost <= limit then
  allowed = 1
  local last = redis.call('INCRBY', KEYS[2], cost)
  local stamp = string.format(fmt, now)
  local ttl = math.ceil(window * 1000) + 1000
  local i = last - cost + 1
  while i <= last do
    local args = {}
    local stop = math.min(last, i + 999)
    for j = i, stop do
      args[#args + 1] = stamp
      -- the stamp keeps members unique even if the counter expired before the log
      args[#args + 1] = j .. '@' .. stamp
    end
    redis.call('ZADD', key, unpack(args))
    i = stop + 1
  end
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  n = n + cost
else
  local entry = redis.call('ZRANGE', key, n - limit + cost - 1, n - limit + cost - 1, 'WITHSCORES')
  retry_after = tonumber(entry[2]) + window - now
end
local reset_after = window
if allowed == 0 then
  reset_after = 0
  if n > 0 then
    local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    reset_after = tonumber(newest[2]) + window - now
  end
end
return string.format('%d %d %.17g %.17g', allowed, limit - n, retry_after, reset_after)
