-- Concurrency: take `cost` leases if they fit; expired leases (crashed holders) are purged first.
-- KEYS[1] sorted set of lease ids scored by expiry time
-- ARGV: cost, now ('' = server TIME), lease id 1 .. lease id cost
-- Locals set by the prelude plan_for() prepends: cost, now (the server's TIME unless a
-- test pins it) and the rule's constants (limit, lease (seconds)).
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local n = redis.call('ZCARD', key)
local allowed = 0
local retry_after = 0
if cost > limit then
  retry_after = math.huge
elseif n + cost <= limit then
  allowed = 1
  local expiry = string.format('%.17g', now + lease)
  local i = 1
  while i <= cost do
    local args = {}
    local stop = math.min(cost, i + 999)
    for j = i, stop do
      args[#args + 1] = expiry
      args[#args + 1] = ARGV[2 + j]
    end
    redis.call('ZADD', key, unpack(args))
    i = stop + 1
  end
  redis.call('PEXPIRE', key, math.ceil(lease * 1000) + 1000)
  n = n + cost
end
return string.format('%d %d %.17g 0', allowed, limit - n, retry_after)
