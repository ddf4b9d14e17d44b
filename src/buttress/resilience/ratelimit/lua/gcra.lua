-- GCRA: one decision, atomically, on the server's clock.
-- KEYS[1] string: the theoretical arrival time (TAT)
-- ARGV: now ('' = server TIME), cost, emission interval T, tau (= T * burst), burst
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local cost = tonumber(ARGV[2])
local T = tonumber(ARGV[3])
local tau = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
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
  redis.call('SET', key, string.format('%.17g', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
elseif cost > burst then
  retry_after = math.huge
else
  retry_after = new_tat - tau - now
end
local remaining = math.floor((tau - (tat_after - now)) / T + TOLERANCE)
if remaining < 0 then remaining = 0 end
local reset_after = tat_after - now
if reset_after < 0 then reset_after = 0 end
return string.format('%d %d %s %s', allowed, remaining, string.format('%.17g', retry_after), string.format('%.17g', reset_after))
