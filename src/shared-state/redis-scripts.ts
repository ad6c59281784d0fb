/**
 * @module The Lua scripts behind the Redis shared state. Each script is one atomic
 * check-and-update, so proxies sharing Redis can never both take the last unit of a limit.
 *
 * Money is bigint pico-USD and can exceed 2^53, but Redis Lua numbers are doubles. So the
 * scripts never do money arithmetic in Lua: sums go through HINCRBY (exact 64-bit integers
 * inside Redis), values are read back as strings with HGET, and comparisons are done on the
 * decimal strings. Token counts and timestamps (microseconds, about 1.8e15) stay below 2^53
 * and are plain Lua numbers.
 */

/** Exact comparison and negation of canonical decimal integer strings. */
const MONEY_HELPERS = `
local function compare(a, b)
  local aNegative, bNegative = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if aNegative ~= bNegative then return aNegative and -1 or 1 end
  local x, y = a, b
  if aNegative then x, y = b:sub(2), a:sub(2) end
  if #x ~= #y then return #x < #y and -1 or 1 end
  if x == y then return 0 end
  return x < y and -1 or 1
end
local function negate(a)
  if a == '0' then return '0' end
  if a:sub(1, 1) == '-' then return a:sub(2) end
  return '-' .. a
end
`;

/**
 * One hash per customer holds every scope's counter as four fields: period:<scope> (period
 * start, ms), spend:<scope> (settled), reserved:<scope> (requests in flight) and used:<scope>
 * (spend + reserved, kept alongside so admission compares one exact value with the limit).
 * retired:<scope> is the period a budget change moved the counter from (SEED_SCRIPT): requests
 * admitted in it settle into the current period.
 */
const COUNTER_HELPERS = `
${MONEY_HELPERS}
local function get(key, name, scope) return redis.call('HGET', key, name .. ':' .. scope) or '0' end
-- Whether 'period' is the counter's: its current one, or the one a period change retired.
local function inPeriod(key, scope, period)
  local current = redis.call('HGET', key, 'period:' .. scope)
  if current == false then return false end
  if tonumber(current) == tonumber(period) then return true end
  local retired = redis.call('HGET', key, 'retired:' .. scope)
  return retired ~= false and tonumber(retired) == tonumber(period)
end
local function isStale(key, scope, period)
  local current = redis.call('HGET', key, 'period:' .. scope)
  return current ~= false and tonumber(current) > tonumber(period) and not inPeriod(key, scope, period)
end
-- A counter in a period its budget no longer has: a later one that starts inside 'period'
-- (before 'periodEnd'; '' = it never ends), left by a change that moved the start earlier; or,
-- with requests in flight, an earlier one that had not ended when 'period' began (its end as
-- the last admission knew it, end:<scope>), left by a change that moved the start later.
local function laterInside(key, scope, period, periodEnd)
  local current = redis.call('HGET', key, 'period:' .. scope)
  if current == false or tonumber(current) <= tonumber(period) or inPeriod(key, scope, period) then return false end
  return periodEnd == '' or tonumber(current) < tonumber(periodEnd)
end
local function outOfPeriod(key, scope, period, periodEnd)
  local current = redis.call('HGET', key, 'period:' .. scope)
  if current == false or tonumber(current) == tonumber(period) then return false end
  if tonumber(current) > tonumber(period) then return laterInside(key, scope, period, periodEnd) end
  if inPeriod(key, scope, period) then return false end
  local ends = redis.call('HGET', key, 'end:' .. scope)
  if ends == false or (ends ~= '' and tonumber(ends) <= tonumber(period)) then return false end
  return compare(get(key, 'reserved', scope), '0') > 0
end
-- A new period starts from zero; a counter already in a later period is left as it is.
local function position(key, scope, period)
  local current = redis.call('HGET', key, 'period:' .. scope)
  if current == false or (tonumber(current) < tonumber(period) and not inPeriod(key, scope, period)) then
    redis.call('HSET', key, 'period:' .. scope, period, 'spend:' .. scope, '0', 'reserved:' .. scope, '0', 'used:' .. scope, '0')
    redis.call('HDEL', key, 'retired:' .. scope)
  end
end
-- Takes back up to 'amount' of the reservations (never below zero).
local function unreserve(key, scope, amount)
  local reserved = get(key, 'reserved', scope)
  local taken = amount
  if compare(reserved, amount) < 0 then taken = reserved end
  redis.call('HINCRBY', key, 'reserved:' .. scope, negate(taken))
  redis.call('HINCRBY', key, 'used:' .. scope, negate(taken))
end
`;

/**
 * Every reservation is a lease: field lease:<scope>|<settlement id> = '<period>:<amount>' in
 * the counter hash, and the same member in a sorted set (KEYS leases) scored by the instant it
 * expires (ms, Redis clock). A settlement gives back what its own lease holds, once; a lease
 * whose proxy crashed before settling expires and is given back, instead of holding part of
 * the customer's budget until the period ends.
 */
const LEASE_HELPERS = `
local function nowMs()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
-- Removes a lease; returns its amount if it was still held in the counter's current period.
local function endLease(key, leases, scope, id)
  local member = scope .. '|' .. id
  local value = redis.call('HGET', key, 'lease:' .. member)
  redis.call('ZREM', leases, member)
  if not value then return nil end
  redis.call('HDEL', key, 'lease:' .. member)
  local separator = value:find(':', 1, true)
  local period, amount = value:sub(1, separator - 1), value:sub(separator + 1)
  if not inPeriod(key, scope, period) then return nil end
  return amount
end
-- Gives back the leases that expired (their proxy died mid-request), a bounded batch per call.
local function expireLeases(key, leases)
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', string.format('%.0f', nowMs()), 'LIMIT', 0, 100)
  for _, member in ipairs(expired) do
    local scope, id = member:match('^(.*)|([^|]*)$')
    local amount = endLease(key, leases, scope, id)
    if amount then unreserve(key, scope, amount) end
  end
end
`;

/**
 * One counter's admission, in two steps so a script can check every limit before taking
 * anything: `counterRefuses` (true when settled + reserved >= limit; '' = no limit) and
 * `counterReserve` (a settlement id reserves once per scope: a repeat replaces its lease).
 */
const RESERVE_HELPERS = `
local function counterRefuses(key, scope, period, limit)
  position(key, scope, period)
  return limit ~= '' and compare(get(key, 'used', scope), limit) >= 0
end
local function counterReserve(key, leases, scope, period, amount, id, ttl)
  if amount == '0' then return end
  local member = scope .. '|' .. id
  local previous = endLease(key, leases, scope, id)
  if previous then unreserve(key, scope, previous) end
  redis.call('HINCRBY', key, 'reserved:' .. scope, amount)
  redis.call('HINCRBY', key, 'used:' .. scope, amount)
  redis.call('HSET', key, 'lease:' .. member, period .. ':' .. amount)
  local expires = nowMs() + ttl
  redis.call('ZADD', leases, string.format('%.0f', expires), member)
  redis.call('PEXPIRE', leases, string.format('%.0f', ttl + 60000))
end
`;

/**
 * KEYS[1] counter hash, KEYS[2] its leases; ARGV scope, period, amount, limit ('' = none),
 * settlement id, lease TTL (ms), period end ('' = none) → {status, spend, reserved}: status 1
 * admitted, 0 refused, 2 the counter is out of the period (ReserveResult.outOfPeriod).
 */
export const RESERVE_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${RESERVE_HELPERS}
local key, leases, scope, period, amount, limit = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
expireLeases(key, leases)
if outOfPeriod(key, scope, period, ARGV[7]) then
  return {2, get(key, 'spend', scope), get(key, 'reserved', scope)}
end
if counterRefuses(key, scope, period, limit) then
  return {0, get(key, 'spend', scope), get(key, 'reserved', scope)}
end
counterReserve(key, leases, scope, period, amount, ARGV[5], tonumber(ARGV[6]))
redis.call('HSET', key, 'end:' .. scope, ARGV[7])
return {1, get(key, 'spend', scope), get(key, 'reserved', scope)}
`;

/**
 * A settlement is remembered as a field '<scope>|<settlement id>' of the customer's marker hash
 * for the current time window (markers; previousMarkers: the window before), not as a key of
 * its own: a retry within a window or the next finds it and is not applied twice. Each
 * window's hash expires as a whole (marker TTL, ms), so there is one key per customer and
 * window, whatever the request rate.
 *
 * `counterCommit` replaces the request's lease with the actual cost and returns {settled
 * spend, the period it counted into} (SettledCounter): the counter's own, which a budget change
 * may have moved while the request ran. A lease that expired meanwhile gives back nothing (it
 * was given back already), the cost is still charged. Admitted in a period that has ended
 * since: the ledger keeps it there ({cost, that period}), the new period is untouched. A
 * counter that is gone (deleted with its customer, or lost by Redis) is not created again.
 * "Only if present" (the journal replay) does not even mark the settlement.
 * `counterRelease` gives the lease back, charging nothing.
 */
const SETTLE_HELPERS = `
-- True when the settlement was applied already; else records it as applied now.
local function settledBefore(markers, previousMarkers, member, ttl)
  if redis.call('HEXISTS', markers, member) == 1 or redis.call('HEXISTS', previousMarkers, member) == 1 then return true end
  redis.call('HSET', markers, member, '1')
  redis.call('PEXPIRE', markers, ttl)
  return false
end
local function settledInto(key, scope)
  return {get(key, 'spend', scope), redis.call('HGET', key, 'period:' .. scope)}
end
local function counterCommit(key, markers, previousMarkers, leases, scope, period, actual, ttl, id, onlyIfPresent)
  local present = redis.call('HEXISTS', key, 'period:' .. scope) == 1
  if onlyIfPresent and not present then return {'0', period} end
  -- A resend answers as its first attempt did (that one positioned the counter).
  if settledBefore(markers, previousMarkers, scope .. '|' .. id, ttl) then
    if isStale(key, scope, period) then return {actual, period} end
    return settledInto(key, scope)
  end
  local held = endLease(key, leases, scope, id)
  if isStale(key, scope, period) then return {actual, period} end
  -- Admission created the counter: gone now, the customer was deleted or Redis lost its data.
  -- Not created again from zero (a seed from the store would then leave it alone, short of
  -- the period's earlier spend); the ledger row carries the charge into the store.
  if not present then return {actual, period} end
  position(key, scope, period)
  if held then unreserve(key, scope, held) end
  redis.call('HINCRBY', key, 'spend:' .. scope, actual)
  redis.call('HINCRBY', key, 'used:' .. scope, actual)
  return settledInto(key, scope)
end
local function counterRelease(key, markers, previousMarkers, leases, scope, ttl, id)
  if settledBefore(markers, previousMarkers, scope .. '|' .. id, ttl) then return end
  local held = endLease(key, leases, scope, id)
  if held then unreserve(key, scope, held) end
end
`;

/**
 * KEYS[1] counter hash, KEYS[2] markers of this window, KEYS[3] markers of the previous one,
 * KEYS[4] the leases; ARGV scope, period, actual, marker TTL (ms), settlement id, only if
 * present ('1'/'0') → {new settled spend, the period it counted into}.
 */
export const COMMIT_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${SETTLE_HELPERS}
return counterCommit(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6] == '1')
`;

/** KEYS[1] counter hash, KEYS[2] and KEYS[3] the markers (as for commit), KEYS[4] the leases; ARGV scope, marker TTL (ms), settlement id. */
export const RELEASE_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${SETTLE_HELPERS}
counterRelease(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3])
return 0
`;

/** KEYS[1] counter hash; ARGV scope, period, period end ('' = none) → settled spend of that period (SpendBook.spendOf; '0' if another). */
export const SPEND_OF_SCRIPT = `${COUNTER_HELPERS}
local key, scope, period = KEYS[1], ARGV[1], ARGV[2]
if inPeriod(key, scope, period) or laterInside(key, scope, period, ARGV[3]) then return get(key, 'spend', scope) end
return '0'
`;

/**
 * KEYS[1] counter hash; ARGV scope, period, spend, onlyIfMissing ('1'/'0'), periodChanged
 * ('1'/'0': the period is now the current one; a counter of another period moves to it, from
 * 'spend' (or, moving to an earlier start, its own spend when larger), and retires its old
 * period). Keeps reservations.
 */
export const SEED_SCRIPT = `${COUNTER_HELPERS}
local key, scope, period, spend, onlyIfMissing, periodChanged = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local current = redis.call('HGET', key, 'period:' .. scope)
if periodChanged == '1' and current ~= false and tonumber(current) ~= tonumber(period) then
  local previous = get(key, 'spend', scope)
  -- Moving to an earlier start, the old period lies inside the new one: its live spend is the
  -- new period's too, and the store's sum may lack what other processes have not flushed.
  if tonumber(current) > tonumber(period) and compare(previous, spend) > 0 then spend = previous end
  redis.call('HSET', key, 'period:' .. scope, period, 'retired:' .. scope, current, 'spend:' .. scope, spend)
  redis.call('HINCRBY', key, 'used:' .. scope, negate(previous))
  redis.call('HINCRBY', key, 'used:' .. scope, spend)
  return 1
end
if onlyIfMissing == '1' and current ~= false then return 0 end
position(key, scope, period)
local previous = get(key, 'spend', scope)
redis.call('HSET', key, 'spend:' .. scope, spend)
redis.call('HINCRBY', key, 'used:' .. scope, negate(previous))
redis.call('HINCRBY', key, 'used:' .. scope, spend)
return 1
`;

/**
 * The sliding 60 s window of one limited key: log (sorted set: ticket member scored by start
 * time, µs), tokens (hash: ticket member → tokens, plus 'total'), slots (sorted set: ticket
 * member scored by the instant its parallel slot expires, µs). A ticket is the member
 * 'r:<ticket id>' in all three, the id chosen by the caller (the request id), so a proxy that
 * lost the reply can still settle it. Times are µs; Lua turns numbers into strings with %.14g,
 * which would round them, hence text().
 *
 * `ratePrune` drops what left the window; `rateRefusal` returns {limit type, limit, current,
 * retry after (ms)} or nil; `rateTake` records the ticket (once per member) and returns
 * {at (ms), remaining requests (-1 = none), remaining tokens (-1 = none)}; `rateSettle` trues
 * the ticket's tokens up and frees its slot (repeatable: it sets, never adds).
 */
const RATE_HELPERS = `
local function text(n) return string.format('%.0f', n) end
local function rateNow(given)
  if given ~= '' then return tonumber(given) end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local function ratePrune(log, tokens, slots, now, window)
  -- Requests that left the window take their tokens with them (in batches: unpack has a stack limit).
  while true do
    local expired = redis.call('ZRANGEBYSCORE', log, '-inf', text(now - window), 'LIMIT', 0, 500)
    if #expired == 0 then break end
    local amounts = redis.call('HMGET', tokens, unpack(expired))
    local sum = 0
    for _, amount in ipairs(amounts) do if amount then sum = sum + tonumber(amount) end end
    redis.call('HINCRBY', tokens, 'total', text(-sum))
    redis.call('HDEL', tokens, unpack(expired))
    redis.call('ZREM', log, unpack(expired))
  end
  -- Slots of proxies that crashed mid-request expire instead of being held forever.
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', text(now))
end
local function rateRefusal(log, tokens, slots, now, window, rpm, tpm, parallel)
  local inFlight = redis.call('ZCARD', slots)
  if parallel and inFlight >= parallel then return {'parallel_requests', parallel, inFlight, 1000} end
  local count = redis.call('ZCARD', log)
  if rpm and count >= rpm then
    local oldest = redis.call('ZRANGE', log, count - rpm, count - rpm, 'WITHSCORES')
    return {'requests', rpm, count, math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))}
  end
  local total = tonumber(redis.call('HGET', tokens, 'total') or '0')
  if tpm and total >= tpm then
    -- When enough tokens will have left the window to drop below the limit.
    local retry = math.floor(window / 1000)
    local remaining = total
    local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      remaining = remaining - tonumber(redis.call('HGET', tokens, entries[i]) or '0')
      if remaining < tpm then
        retry = math.max(1, math.ceil((tonumber(entries[i + 1]) + window - now) / 1000))
        break
      end
    end
    return {'tokens', tpm, total, retry}
  end
  return nil
end
local function rateTake(log, tokens, slots, now, window, slotTtl, rpm, tpm, estimated, member)
  local count = redis.call('ZCARD', log)
  local total = tonumber(redis.call('HGET', tokens, 'total') or '0')
  -- A ticket id admits once: a repeat would count its tokens twice.
  if redis.call('HEXISTS', tokens, member) == 0 then
    redis.call('ZADD', log, text(now), member)
    redis.call('HSET', tokens, member, text(estimated))
    total = redis.call('HINCRBY', tokens, 'total', text(estimated))
    redis.call('ZADD', slots, text(now + slotTtl), member)
  else
    count = count - 1
  end
  -- Abandoned windows expire: every entry is out of the window once it has passed.
  local windowTtlMs = math.max(1, math.ceil(window / 1000) + 1000)
  redis.call('PEXPIRE', log, text(windowTtlMs))
  redis.call('PEXPIRE', tokens, text(windowTtlMs))
  redis.call('PEXPIRE', slots, text(math.max(1, math.ceil(slotTtl / 1000) + 1000)))
  local remainingRequests, remainingTokens = -1, -1
  if rpm then remainingRequests = rpm - count - 1 end
  if tpm then remainingTokens = math.max(0, tpm - total) end
  return {math.floor(now / 1000), remainingRequests, remainingTokens}
end
local function rateSettle(tokens, slots, member, actual)
  redis.call('ZREM', slots, member)
  local previous = redis.call('HGET', tokens, member)
  if previous then
    redis.call('HSET', tokens, member, text(actual))
    redis.call('HINCRBY', tokens, 'total', text(actual - tonumber(previous)))
  end
end
`;

/**
 * KEYS log, tokens, slots. ARGV now (µs; '' = Redis TIME), rpm, tpm, parallel ('' = no
 * limit), estimated tokens, window (µs), parallel slot safety TTL (µs), ticket member.
 * → {1, at (ms), remaining requests, remaining tokens} or {0, limit type, limit, current, retry after (ms)}.
 */
export const ACQUIRE_SCRIPT = `${RATE_HELPERS}
local log, tokens, slots = KEYS[1], KEYS[2], KEYS[3]
local now, window, slotTtl = rateNow(ARGV[1]), tonumber(ARGV[6]), tonumber(ARGV[7])
local rpm, tpm, parallel = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
ratePrune(log, tokens, slots, now, window)
local refusal = rateRefusal(log, tokens, slots, now, window, rpm, tpm, parallel)
if refusal then return {0, refusal[1], refusal[2], refusal[3], refusal[4]} end
local taken = rateTake(log, tokens, slots, now, window, slotTtl, rpm, tpm, tonumber(ARGV[5]), ARGV[8])
return {1, taken[1], taken[2], taken[3]}
`;

/** KEYS log, tokens, slots; ARGV ticket member, actual tokens. */
export const SETTLE_SCRIPT = `${RATE_HELPERS}
rateSettle(KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))
return 0
`;

/**
 * A whole request's admission in one round trip: every spend counter of the customer (overall,
 * model) and its rate window, all checked before anything is taken, so a refusal leaves no
 * reservation to give back. All keys carry the customer's hash tag: one cluster slot.
 * KEYS counter hash, leases, rate log, rate tokens, rate slots.
 * ARGV settlement id, lease TTL (ms), counter count n, then n × (scope, period, amount, limit,
 * period end ('' = none)),
 * then rate ('1'/'0'), now, rpm, tpm, parallel, estimated tokens, window, slot TTL, member,
 * and last, whether a missing counter may start from zero ('1'/'0').
 * → {1, n × (spend, reserved), at, remaining requests, remaining tokens} when admitted;
 *   {0, refused counter (1-based), n × (spend, reserved)} when a budget refuses;
 *   {2, limit type, limit, current, retry after} when a rate limit refuses;
 *   {3, missing counter (1-based)} when a counter is missing and may not start from zero;
 *   {4, that counter} when a counter is out of the period (ReserveResult.outOfPeriod).
 */
export const ADMIT_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${RESERVE_HELPERS}${RATE_HELPERS}
local key, leases, log, tokens, slots = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- Counter i's arguments start at ARGV[at(i)]: scope, period, amount, limit, period end.
local function at(i) return 5 * i - 1 end
local function counters()
  local reply = {}
  for i = 1, n do
    local scope = ARGV[at(i)]
    reply[#reply + 1] = get(key, 'spend', scope)
    reply[#reply + 1] = get(key, 'reserved', scope)
  end
  return reply
end
expireLeases(key, leases)
-- The last argument: '1' when a missing counter may start from zero (see AdmissionRequest.createMissing).
if ARGV[#ARGV] ~= '1' then
  for i = 1, n do
    if redis.call('HEXISTS', key, 'period:' .. ARGV[at(i)]) == 0 then return {3, i} end
  end
end
for i = 1, n do
  if outOfPeriod(key, ARGV[at(i)], ARGV[at(i) + 1], ARGV[at(i) + 4]) then return {4, i} end
end
for i = 1, n do
  if counterRefuses(key, ARGV[at(i)], ARGV[at(i) + 1], ARGV[at(i) + 3]) then
    local reply = {0, i}
    for _, value in ipairs(counters()) do reply[#reply + 1] = value end
    return reply
  end
end
local r = 4 + 5 * n
local taken = {-1, -1, -1}
if ARGV[r] == '1' then
  local now, window, slotTtl = rateNow(ARGV[r + 1]), tonumber(ARGV[r + 6]), tonumber(ARGV[r + 7])
  local rpm, tpm, parallel = tonumber(ARGV[r + 2]), tonumber(ARGV[r + 3]), tonumber(ARGV[r + 4])
  ratePrune(log, tokens, slots, now, window)
  local refusal = rateRefusal(log, tokens, slots, now, window, rpm, tpm, parallel)
  if refusal then return {2, refusal[1], refusal[2], refusal[3], refusal[4]} end
  taken = rateTake(log, tokens, slots, now, window, slotTtl, rpm, tpm, tonumber(ARGV[r + 5]), ARGV[r + 8])
end
for i = 1, n do
  counterReserve(key, leases, ARGV[at(i)], ARGV[at(i) + 1], ARGV[at(i) + 2], id, ttl)
  redis.call('HSET', key, 'end:' .. ARGV[at(i)], ARGV[at(i) + 4])
end
local reply = {1}
for _, value in ipairs(counters()) do reply[#reply + 1] = value end
reply[#reply + 1] = taken[1]
reply[#reply + 1] = taken[2]
reply[#reply + 1] = taken[3]
return reply
`;

/**
 * A whole request's settlement in one round trip: commits (or releases) each of its counters
 * and trues up its rate ticket. Idempotent as its parts are.
 * KEYS counter hash, markers, previous markers, leases, rate log, rate tokens, rate slots.
 * ARGV settlement id, marker TTL (ms), 'commit' or 'release', counter count n, then
 * n × (scope, period, actual), then rate ('1'/'0'), ticket member, actual tokens.
 * → n × {settled spend, the period it counted into} (commit), or {0, the key's period} (release).
 */
export const SETTLE_REQUEST_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${SETTLE_HELPERS}${RATE_HELPERS}
local key, markers, previousMarkers, leases, tokens, slots = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]
local id, ttl, commit, n = ARGV[1], ARGV[2], ARGV[3] == 'commit', tonumber(ARGV[4])
local reply = {}
for i = 1, n do
  local scope, period, actual = ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  if commit then
    reply[i] = counterCommit(key, markers, previousMarkers, leases, scope, period, actual, ttl, id, false)
  else
    counterRelease(key, markers, previousMarkers, leases, scope, ttl, id)
    reply[i] = {'0', period}
  end
end
local r = 5 + 3 * n
if ARGV[r] == '1' then rateSettle(tokens, slots, ARGV[r + 1], tonumber(ARGV[r + 2])) end
return reply
`;
