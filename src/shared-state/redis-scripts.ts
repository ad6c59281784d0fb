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
 */
const COUNTER_HELPERS = `
${MONEY_HELPERS}
local function get(key, name, scope) return redis.call('HGET', key, name .. ':' .. scope) or '0' end
local function isStale(key, scope, period)
  local current = redis.call('HGET', key, 'period:' .. scope)
  return current ~= false and tonumber(current) > tonumber(period)
end
-- A new period starts from zero; a counter already in a later period is left as it is.
local function position(key, scope, period)
  local current = redis.call('HGET', key, 'period:' .. scope)
  if current == false or tonumber(current) < tonumber(period) then
    redis.call('HSET', key, 'period:' .. scope, period, 'spend:' .. scope, '0', 'reserved:' .. scope, '0', 'used:' .. scope, '0')
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
  local current = redis.call('HGET', key, 'period:' .. scope)
  if current == false or tonumber(current) ~= tonumber(period) then return nil end
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
 * KEYS[1] counter hash, KEYS[2] its leases; ARGV scope, period, amount, limit ('' = none),
 * settlement id, lease TTL (ms) → {admitted, spend, reserved}.
 */
export const RESERVE_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}
local key, leases, scope, period, amount, limit = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local id, ttl = ARGV[5], tonumber(ARGV[6])
expireLeases(key, leases)
position(key, scope, period)
if limit ~= '' and compare(get(key, 'used', scope), limit) >= 0 then
  return {0, get(key, 'spend', scope), get(key, 'reserved', scope)}
end
if amount ~= '0' then
  local member = scope .. '|' .. id
  -- A settlement id reserves once per scope: a repeated reserve replaces its lease.
  local previous = endLease(key, leases, scope, id)
  if previous then unreserve(key, scope, previous) end
  redis.call('HINCRBY', key, 'reserved:' .. scope, amount)
  redis.call('HINCRBY', key, 'used:' .. scope, amount)
  redis.call('HSET', key, 'lease:' .. member, period .. ':' .. amount)
  local expires = nowMs() + ttl
  redis.call('ZADD', leases, string.format('%.0f', expires), member)
  redis.call('PEXPIRE', leases, string.format('%.0f', ttl + 60000))
end
return {1, get(key, 'spend', scope), get(key, 'reserved', scope)}
`;

/**
 * A settlement is remembered as a field '<scope>|<settlement id>' of the customer's marker hash
 * for the current time window (KEYS markers, KEYS previous markers: the window before), not as
 * a key of its own: a retry within a window or the next finds it and is not applied twice. Each
 * window's hash expires as a whole (ARGV marker TTL, ms), so there is one key per customer and
 * window, whatever the request rate.
 */
const MARKER_HELPERS = `
-- True when the settlement was applied already; else records it as applied now.
local function settledBefore(markers, previousMarkers, member, ttl)
  if redis.call('HEXISTS', markers, member) == 1 or redis.call('HEXISTS', previousMarkers, member) == 1 then return true end
  redis.call('HSET', markers, member, '1')
  redis.call('PEXPIRE', markers, ttl)
  return false
end
`;

/**
 * KEYS[1] counter hash, KEYS[2] markers of this window, KEYS[3] markers of the previous one,
 * KEYS[4] the leases; ARGV scope, period, actual, marker TTL (ms), settlement id, only if
 * present ('1'/'0') → new settled spend. A settlement retried after a lost reply finds its
 * marker and is not applied twice; it gives back what its lease still holds (nothing if the
 * lease expired meanwhile and was given back already). "Only if present" leaves a counter
 * Redis does not have alone.
 */
export const COMMIT_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${MARKER_HELPERS}
local key, leases, scope, period, actual = KEYS[1], KEYS[4], ARGV[1], ARGV[2], ARGV[3]
if ARGV[6] == '1' and redis.call('HEXISTS', key, 'period:' .. scope) == 0 then return '0' end
if settledBefore(KEYS[2], KEYS[3], scope .. '|' .. ARGV[5], ARGV[4]) then return get(key, 'spend', scope) end
local held = endLease(key, leases, scope, ARGV[5])
-- Admitted in a period that has ended since: the ledger keeps it there; the new period is untouched.
if isStale(key, scope, period) then return actual end
position(key, scope, period)
if held then unreserve(key, scope, held) end
redis.call('HINCRBY', key, 'spend:' .. scope, actual)
redis.call('HINCRBY', key, 'used:' .. scope, actual)
return get(key, 'spend', scope)
`;

/** KEYS[1] counter hash, KEYS[2] and KEYS[3] the markers (as for commit), KEYS[4] the leases; ARGV scope, marker TTL (ms), settlement id. */
export const RELEASE_SCRIPT = `${COUNTER_HELPERS}${LEASE_HELPERS}${MARKER_HELPERS}
local key, leases, scope = KEYS[1], KEYS[4], ARGV[1]
if settledBefore(KEYS[2], KEYS[3], scope .. '|' .. ARGV[3], ARGV[2]) then return 0 end
local held = endLease(key, leases, scope, ARGV[3])
if held then unreserve(key, scope, held) end
return 0
`;

/** KEYS[1] counter hash; ARGV scope, period → settled spend of that period ('0' if another). */
export const SPEND_OF_SCRIPT = `${COUNTER_HELPERS}
local key, scope, period = KEYS[1], ARGV[1], ARGV[2]
local current = redis.call('HGET', key, 'period:' .. scope)
if current ~= false and tonumber(current) == tonumber(period) then return get(key, 'spend', scope) end
return '0'
`;

/** KEYS[1] counter hash; ARGV scope, period, spend, onlyIfMissing ('1'/'0'). Keeps reservations. */
export const SEED_SCRIPT = `${COUNTER_HELPERS}
local key, scope, period, spend, onlyIfMissing = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if onlyIfMissing == '1' and redis.call('HEXISTS', key, 'period:' .. scope) == 1 then return 0 end
position(key, scope, period)
local previous = get(key, 'spend', scope)
redis.call('HSET', key, 'spend:' .. scope, spend)
redis.call('HINCRBY', key, 'used:' .. scope, negate(previous))
redis.call('HINCRBY', key, 'used:' .. scope, spend)
return 1
`;

/**
 * KEYS[1] log (sorted set: ticket id scored by start time, µs), KEYS[2] tokens (hash: ticket
 * id → tokens, plus 'total'), KEYS[3] parallel slots (sorted set: ticket id scored by the
 * instant its slot expires, µs). A ticket is the member 'r:<ticket id>' in all three, the id
 * chosen by the caller (the request id), so a proxy that lost the reply can still settle it.
 * No key outside the limited key's hash tag: the script touches one cluster slot.
 * ARGV now (µs; '' = Redis TIME), rpm, tpm, parallel ('' = no limit), estimated tokens,
 * window (µs), parallel slot safety TTL (µs), ticket member.
 * → {1, at (ms), remaining requests (-1 = none), remaining tokens (-1 = none)}
 *   or {0, limit type, limit, current, retry after (ms)}.
 */
export const ACQUIRE_SCRIPT = `
-- Lua turns numbers into strings with %.14g, which would round microsecond timestamps.
local function text(n) return string.format('%.0f', n) end
local log, tokens, slots, member = KEYS[1], KEYS[2], KEYS[3], ARGV[8]
local now
if ARGV[1] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
else
  now = tonumber(ARGV[1])
end
local rpm, tpm, parallel = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local estimated, window, slotTtl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local horizon = now - window

-- Requests that left the window take their tokens with them (in batches: unpack has a stack limit).
while true do
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', text(horizon), 'LIMIT', 0, 500)
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

local inFlight = redis.call('ZCARD', slots)
if parallel and inFlight >= parallel then
  return {0, 'parallel_requests', parallel, inFlight, 1000}
end
local count = redis.call('ZCARD', log)
if rpm and count >= rpm then
  local oldest = redis.call('ZRANGE', log, count - rpm, count - rpm, 'WITHSCORES')
  return {0, 'requests', rpm, count, math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))}
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
  return {0, 'tokens', tpm, total, retry}
end

-- A ticket id admits once: a repeat would count its tokens twice.
if redis.call('HEXISTS', tokens, member) == 0 then
  redis.call('ZADD', log, text(now), member)
  redis.call('HSET', tokens, member, text(estimated))
  total = redis.call('HINCRBY', tokens, 'total', text(estimated))
  redis.call('ZADD', slots, text(now + slotTtl), member)
end
-- Abandoned windows expire: every entry is out of the window once it has passed.
local windowTtlMs = math.max(1, math.ceil(window / 1000) + 1000)
redis.call('PEXPIRE', log, text(windowTtlMs))
redis.call('PEXPIRE', tokens, text(windowTtlMs))
redis.call('PEXPIRE', slots, text(math.max(1, math.ceil(slotTtl / 1000) + 1000)))
local remainingRequests, remainingTokens = -1, -1
if rpm then remainingRequests = rpm - count - 1 end
if tpm then remainingTokens = math.max(0, tpm - total) end
return {1, math.floor(now / 1000), remainingRequests, remainingTokens}
`;

/** KEYS log, tokens, slots; ARGV ticket member, actual tokens, holds slot ('1'/'0'). Repeatable: it sets, never adds. */
export const SETTLE_SCRIPT = `
local function text(n) return string.format('%.0f', n) end
local tokens, slots = KEYS[2], KEYS[3]
local id, actual = ARGV[1], tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('ZREM', slots, id) end
local previous = redis.call('HGET', tokens, id)
if previous then
  redis.call('HSET', tokens, id, text(actual))
  redis.call('HINCRBY', tokens, 'total', text(actual - tonumber(previous)))
end
return 0
`;
