-- One circuit breaker's state machine, shared by every process, run atomically on the server's
-- clock. It repeats buttress.resilience.breaker.store.MemoryBreakerStore step for step.
-- KEYS[1] hash: the state; KEYS[2] string: the count window's ring (one byte per outcome)
-- ARGV[1] op: acquire | record | trip_if | snapshot | force
-- ARGV[2] now ('' = server TIME)
-- ARGV[3..13] config: failure_threshold, failure_rate, slow_rate, window_size, minimum_calls,
--   reset_interval, open_duration, half_open_max_calls, half_open_success_threshold,
--   half_open_max_duration, ttl_ms (absent numbers are '')
-- ARGV[14..] op arguments: record: generation, probe (0/1), outcome (s/f/i), slow (0/1);
--   trip_if: generation; force: state
-- returns {state, generation, permit (0 none, 1 call, 2 probe), retry_after ('' = none),
--   transition old, new, reason code, reason number ('' = none), counts (5), totals (5)}
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local op = ARGV[1]
local threshold = tonumber(ARGV[3])
local failure_rate = tonumber(ARGV[4])
local slow_rate = tonumber(ARGV[5])
local window_size = tonumber(ARGV[6])
local minimum_calls = tonumber(ARGV[7])
local interval = tonumber(ARGV[8])
local open_duration = tonumber(ARGV[9])
local max_probes = tonumber(ARGV[10])
local probe_successes_needed = tonumber(ARGV[11])
local half_open_limit = tonumber(ARGV[12])
local ttl = tonumber(ARGV[13])
local H = KEYS[1]
local RING = KEYS[2]
local FMT = '%.17g'

local FIELDS = {'st', 'g', 's', 'f', 'cf', 'saf', 'rs', 'rf', 'ig', 'rj', 'tr', 'ou', 'hs', 'ie', 'pr', 'ps',
                'pf', 'wc', 'wf', 'wsl', 'wp'}
local raw = redis.call('HMGET', H, unpack(FIELDS))
local S = {}
for i, name in ipairs(FIELDS) do
  if i == 1 then S[name] = raw[i] or 'closed'
  elseif raw[i] then S[name] = tonumber(raw[i])
  else S[name] = 0 end
end
if not raw[14] then
  -- a breaker never seen: the first reading starts the first interval (MemoryBreakerStore.bind)
  if interval then S.ie = -math.huge else S.ie = math.huge end
end
local dirty = false
local t_old, t_new, t_code, t_num = '', '', '', ''

local function new_generation()
  S.rs = S.rs + S.s
  S.rf = S.rf + S.f
  S.g = S.g + 1
  S.s, S.f, S.cf, S.saf = 0, 0, 0, 0
  S.pr, S.ps, S.pf = 0, 0, 0
  if window_size then
    S.wc, S.wf, S.wsl, S.wp = 0, 0, 0, 0
    redis.call('DEL', RING)
  end
  if interval then S.ie = now + interval else S.ie = math.huge end
  dirty = true
end

local function move(new, code, num)
  t_old, t_new, t_code, t_num = S.st, new, code, num or ''
  S.st = new
  new_generation()
  if new == 'open' then
    S.tr = S.tr + 1
    S.ou = now + open_duration
  elseif new == 'half_open' then
    S.hs = now
  end
end

local function advance()
  if S.st == 'open' then
    if now >= S.ou then move('half_open', 'elapsed') end
  elseif S.st == 'half_open' then
    if half_open_limit and now >= S.hs + half_open_limit then move('open', 'half_open_timeout') end
  elseif S.st == 'closed' and interval and now >= S.ie then
    new_generation()
  end
end

local function window_record(failed, slow)
  local pos = S.wp
  if S.wc == window_size then
    local old = string.byte(redis.call('GETRANGE', RING, pos, pos)) or 0
    if old % 2 == 1 then S.wf = S.wf - 1 end
    if old >= 2 then S.wsl = S.wsl - 1 end
  else
    S.wc = S.wc + 1
  end
  local flags = 0
  if failed then
    flags = 1
    S.wf = S.wf + 1
  end
  if slow then
    flags = flags + 2
    S.wsl = S.wsl + 1
  end
  redis.call('SETRANGE', RING, pos, string.char(flags))
  pos = pos + 1
  if pos == window_size then pos = 0 end
  S.wp = pos
end

local function trip_reason()
  if threshold and S.cf >= threshold then return 'consecutive', S.cf end
  if window_size and S.wc >= minimum_calls then
    if failure_rate and S.wf >= failure_rate * S.wc then return 'rate', S.wf .. ':' .. S.wc end
    if slow_rate and S.wsl >= slow_rate * S.wc then return 'slow', S.wsl .. ':' .. S.wc end
  end
  return nil
end

local permit = 0
local retry_after = ''
local want_counts = false

if op == 'acquire' then
  advance()
  local st = S.st
  if st == 'closed' or st == 'forced_closed' then
    permit = 1
  elseif st == 'half_open' and S.pr < max_probes then
    S.pr = S.pr + 1
    permit = 2
    dirty = true
  else
    S.rj = S.rj + 1
    dirty = true
    if st == 'open' then retry_after = string.format(FMT, math.max(0, S.ou - now)) end
  end
elseif op == 'record' then
  local generation = tonumber(ARGV[14])
  local probe = ARGV[15] == '1'
  local outcome = ARGV[16]
  local slow = ARGV[17] == '1'
  dirty = true
  if outcome == 'i' then
    S.ig = S.ig + 1
    if probe and generation == S.g then S.pr = S.pr - 1 end
  elseif generation ~= S.g then
    if outcome == 'f' then S.rf = S.rf + 1 else S.rs = S.rs + 1 end
  else
    local failed = outcome == 'f'
    if failed then
      S.f = S.f + 1
      S.cf = S.cf + 1
      S.saf = S.s
    else
      S.s = S.s + 1
      S.cf = 0
    end
    if probe then
      if failed or (slow and slow_rate) then
        S.pf = S.pf + 1
        if S.pf > max_probes - probe_successes_needed then move('open', 'probe_failed', S.pf) end
      else
        S.ps = S.ps + 1
        if S.ps >= probe_successes_needed then move('closed', 'probe_ok', S.ps) end
      end
    elseif S.st ~= 'forced_closed' then
      if window_size then window_record(failed, slow) end
      if failed or slow then
        local code, num = trip_reason()
        if code then
          move('open', code, num)
        elseif failed then
          want_counts = true
        end
      end
    end
  end
elseif op == 'trip_if' then
  if tonumber(ARGV[14]) == S.g and S.st == 'closed' then move('open', 'ready_to_trip') end
elseif op == 'snapshot' then
  advance()
  want_counts = true
  if S.st == 'open' then retry_after = string.format(FMT, math.max(0, S.ou - now)) end
elseif op == 'force' then
  local target = ARGV[14]
  if target == S.st then
    if target == 'closed' then new_generation() end
  else
    local legal = {
      closed = {open = true, forced_open = true, forced_closed = true},
      open = {half_open = true, closed = true, forced_open = true, forced_closed = true},
      half_open = {closed = true, open = true, forced_open = true, forced_closed = true},
      forced_open = {closed = true, forced_closed = true},
      forced_closed = {closed = true, forced_open = true},
    }
    if not legal[S.st][target] then return {S.st, S.g, -1} end
    move(target, 'forced')
  end
else
  return redis.error_reply('unknown breaker op ' .. tostring(op))
end

if dirty then
  local out = {}
  for i, name in ipairs(FIELDS) do
    out[#out + 1] = name
    if i == 1 then out[#out + 1] = S.st else out[#out + 1] = string.format(FMT, S[name]) end
  end
  redis.call('HSET', H, unpack(out))
  redis.call('PEXPIRE', H, ttl)
  if window_size and S.wc > 0 then redis.call('PEXPIRE', RING, ttl) end
end

local result = {S.st, S.g, permit, retry_after, t_old, t_new, t_code, tostring(t_num)}
if want_counts then
  for _, v in ipairs({S.s + S.f, S.s, S.f, S.s - S.saf, S.cf,
                      S.rs + S.s, S.rf + S.f, S.ig, S.rj, S.tr}) do
    result[#result + 1] = v
  end
end
return result
