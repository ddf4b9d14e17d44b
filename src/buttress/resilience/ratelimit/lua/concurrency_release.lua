-- Concurrency: give leases back. KEYS[1] sorted set of leases; ARGV: lease ids.
-- returns how many of them were still held
local removed = 0
local i = 1
while i <= #ARGV do
  local stop = math.min(#ARGV, i + 999)
  removed = removed + redis.call('ZREM', KEYS[1], unpack(ARGV, i, stop))
  i = stop + 1
end
return removed
