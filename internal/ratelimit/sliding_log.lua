-- agentpdp exact sliding-log rate limiter: one atomic evaluation per decision.
--
-- KEYS[i]  sorted set of counter i. Every KEYS entry shares the {policy} hash
--          tag, so one call touches one Cluster slot.
-- ARGV[1]  "1" to charge when every counter fits, "0" to only report.
-- ARGV[2+3(i-1)], ARGV[3+3(i-1)], ARGV[4+3(i-1)]
--          limit, window in microseconds, cost (>= 1) of counter i.
--
-- A counter's set holds one member per charge still inside its window:
--   score  = Redis time of the charge in microseconds, never below the
--            newest score already there (so scores follow charge order even
--            if the server clock steps back, e.g. after a failover);
--   member = "<cum>:<cost>", cum being the running total charged to the set
--            (zero-padded to 16 digits so equal scores sort by cum).
-- Members are unique (cum strictly grows) and carry their cost, and the sum
-- of the costs in the window is cum(newest) - cum(oldest) + cost(oldest):
-- two O(log n) lookups, whatever the number of entries.
--
-- Returns {now_us, charged (0|1), then per counter: allowed (0|1),
--          remaining, reset_us}.

-- Numbers go to redis.call as exact integer strings (a Lua number would be
-- formatted by the server, in some versions with too few digits).
local function int(x)
  return string.format('%d', x)
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local charge = ARGV[1] == '1'
local n = #KEYS

local limit, win, cost, used, oldest, lastCum, lastAt = {}, {}, {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local k = KEYS[i]
  local a = 2 + (i - 1) * 3
  limit[i] = tonumber(ARGV[a])
  win[i] = tonumber(ARGV[a + 1])
  cost[i] = tonumber(ARGV[a + 2])
  -- An entry counts while now - score < window. Most calls find nothing
  -- to expire: look at the oldest entry first and trim only when it is out
  -- (each redis.call costs a few microseconds of script time).
  local cutoff = now - win[i]
  local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  if first[1] and tonumber(first[2]) <= cutoff then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', int(cutoff))
    first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  end
  used[i], lastCum[i], lastAt[i], oldest[i] = 0, 0, 0, false
  if first[1] then
    local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
    local fcum, fcost = string.match(first[1], '^(%d+):(%d+)$')
    lastCum[i] = tonumber(string.match(last[1], '^(%d+):'))
    lastAt[i] = tonumber(last[2])
    used[i] = lastCum[i] - tonumber(fcum) + tonumber(fcost)
    oldest[i] = tonumber(first[2])
  end
  if used[i] + cost[i] > limit[i] then
    all = false
  end
end

local charged = charge and all
local out = {now, charged and 1 or 0}
for i = 1, n do
  local rem = limit[i] - used[i]
  local reset
  if charged then
    local at = now
    if lastAt[i] > at then
      at = lastAt[i]
    end
    local cum = lastCum[i] + cost[i]
    redis.call('ZADD', KEYS[i], int(at), string.format('%016d:%d', cum, cost[i]))
    -- The set is useless once its newest entry left the window.
    redis.call('PEXPIRE', KEYS[i], int(math.ceil((at + win[i] - now) / 1000)))
    rem = rem - cost[i]
    reset = (oldest[i] or at) + win[i]
  else
    reset = (oldest[i] or now) + win[i]
  end
  if rem < 0 then
    rem = 0
  end
  out[#out + 1] = (used[i] + cost[i] <= limit[i]) and 1 or 0
  out[#out + 1] = rem
  out[#out + 1] = reset
end
return out
