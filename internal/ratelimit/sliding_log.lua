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
--   member = five big-endian int64s (struct '>i8i8i8i8i8'):
--            cum    running total charged to the set, this charge included
--                   (first, so members of equal score sort by it);
--            cost   of this charge;
--            oldAt  score of the set's oldest member when this one was added;
--            base   cum of that oldest member minus its cost;
--            exp    the key's expiry (µs) once this member was added.
-- Every member is unique (cum strictly grows), and the sum of the costs in
-- the window is cum(newest) - base(oldest). The newest member carries what
-- a call needs: while its oldAt is inside the window nothing has expired,
-- and one ZRANGE answers. Only when oldAt has left the window are expired
-- members trimmed and the oldest read again. (A non-charging call can trim
-- without adding a member, leaving the newest member's oldAt stale; stale
-- means older, which only sends the next call down the trimming path.)
-- The key's expiry moves only when a new member's window would outlive
-- it, then to window/8 (at most a minute) past that, so a steady stream
-- of charges refreshes it now and then rather than on every call.
--
-- Returns {now_us, charged (0|1), then per counter: allowed (0|1),
--          remaining, reset_us}.

-- Numbers go to redis.call as exact integer strings (a Lua number would be
-- formatted by the server, in some versions with too few digits).
local function int(x)
  return string.format('%d', x)
end

local MEMBER = '>i8i8i8i8i8'
local MAX_SLACK = 60000000

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local charge = ARGV[1] == '1'
local n = #KEYS

-- Per counter: its ARGV, what is used of it, its newest cum and score, its
-- oldest member's score (false when empty) and base, and the key's expiry.
local limit, win, cost, used, last, lastAt, oldAt, base, exp = {}, {}, {}, {}, {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local k = KEYS[i]
  local a = 2 + (i - 1) * 3
  limit[i], win[i], cost[i] = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  used[i], last[i], lastAt[i], oldAt[i], base[i], exp[i] = 0, 0, 0, false, 0, 0
  local cutoff = now - win[i]
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if top[1] then
    local cum, _, oat, obase, e = struct.unpack(MEMBER, top[1])
    last[i], lastAt[i], exp[i] = cum, tonumber(top[2]), e
    if oat > cutoff then
      oldAt[i], base[i] = oat, obase
    else
      -- An entry counts while now - score < window.
      redis.call('ZREMRANGEBYSCORE', k, '-inf', int(cutoff))
      local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
      if first[1] then
        local fcum, fcost = struct.unpack('>i8i8', first[1])
        oldAt[i], base[i] = tonumber(first[2]), fcum - fcost
      else
        -- The set, and with it the key and its expiry, is gone.
        last[i], lastAt[i], exp[i] = 0, 0, 0
      end
    end
    if oldAt[i] then
      used[i] = last[i] - base[i]
    end
  end
  if used[i] + cost[i] > limit[i] then
    all = false
  end
end

-- add adds counter i's member at time at and moves the key's expiry if
-- the member's window would outlive it. It returns the oldest score.
local function add(i, at)
  local oat, b = oldAt[i], base[i]
  if not oat then
    oat, b = at, last[i]
  end
  local e, move = exp[i], exp[i] < at + win[i]
  if move then
    local slack = math.floor(win[i] / 8)
    if slack > MAX_SLACK then
      slack = MAX_SLACK
    end
    e = at + win[i] + slack
  end
  redis.call('ZADD', KEYS[i], int(at), struct.pack(MEMBER, last[i] + cost[i], cost[i], oat, b, e))
  if move then
    -- After the ZADD: an expiry on a key that does not exist yet is lost.
    redis.call('PEXPIREAT', KEYS[i], int(math.ceil(e / 1000)))
  end
  return oat
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
    reset = add(i, at) + win[i]
    rem = rem - cost[i]
  else
    reset = (oldAt[i] or now) + win[i]
  end
  if rem < 0 then
    rem = 0
  end
  out[#out + 1] = (used[i] + cost[i] <= limit[i]) and 1 or 0
  out[#out + 1] = rem
  out[#out + 1] = reset
end
return out
