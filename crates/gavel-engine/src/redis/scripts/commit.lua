#!lua
-- commit.lua: the one script that changes an auction. A compare-and-swap, nothing more:
-- the node has decided with gavel-core's rules (Rust) and sends what to write; this script
-- checks that nothing moved since the node read the auction and that its clock lies where
-- the decision holds, then writes it all in one atomic step. It knows no auction rule and
-- never parses the JSON it stores.
--
-- KEYS[1] auction hash   KEYS[2] change log   KEYS[3] recent list   KEYS[4] request record
-- KEYS[5] the auction's index of request records (what retire.lua deletes them by)
-- ARGV[1]  version the node decided on ('': the auction must not exist yet)
-- ARGV[2], ARGV[3]  the decision holds for a clock in [ARGV[2], ARGV[3]) (ms)
-- ARGV[4]  '' to read Redis TIME; tests pass their frozen clock's time (ms)
-- ARGV[5]  new version ('' when nothing changes)   ARGV[6] new seq
-- ARGV[7]  change JSON (log, publish, 'last')   ARGV[8] history entry ('' = none)
-- ARGV[9]  entries read from the recent list (it may hold up to twice as many)   ARGV[10] Pub/Sub channel
-- ARGV[11] '1' when this change is the auction's last one
-- ARGV[12] reply to record ('' = none)   ARGV[13] its TTL (s)
-- ARGV[14] a recorded reply it may replace ('' = none)
-- ARGV[15] spec JSON, ARGV[16] the drainers' consumer group (creation only)
-- ARGV[17] '1' when the JSON holds clock markers: \1<k>\1 is written as clock + k
-- ARGV[18] the node's clock floor ('' = none): TIME is never taken below it
-- ARGV[19] 's': ARGV[10] is the auction's sharded channel (Redis Cluster: SPUBLISH)
--
-- The auction's clock is max(TIME, floor, t) (t: the last clock it used; floor: the calling
-- node's latest), so it never runs backwards even if TIME does. Milliseconds are exact as Lua
-- doubles; versions are compared as strings.
--
-- Returns {'ok', clock}, {'moved', version or '', last change or '', clock}, or
-- {'repeat', record, last change or ''}.
local hash, rec = KEYS[1], KEYS[4]
local function fmt(n) return string.format('%.0f', n) end
if ARGV[12] ~= '' then
  local prev = redis.call('GET', rec)
  if prev and prev ~= ARGV[14] then
    return { 'repeat', prev, redis.call('HGET', hash, 'last') or '' }
  end
end

local h = redis.call('HMGET', hash, 'v', 't')
local time
if ARGV[4] ~= '' then
  time = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  time = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if (ARGV[18] or '') ~= '' then time = math.max(time, tonumber(ARGV[18])) end
local clock = math.max(time, tonumber(h[2] or '0'))
if (h[1] or '') ~= ARGV[1] or clock < tonumber(ARGV[2]) or clock >= tonumber(ARGV[3]) then
  -- Keep the clock where it was seen, so an answer given at it stays true.
  if h[1] and clock > tonumber(h[2] or '0') then redis.call('HSET', hash, 't', fmt(clock)) end
  return { 'moved', h[1] or '', redis.call('HGET', hash, 'last') or '', fmt(clock) }
end

local function stamp(s)
  if ARGV[17] ~= '1' then return s end
  return (string.gsub(s, '\1(%-?%d+)\1', function(k) return fmt(clock + tonumber(k)) end))
end
if ARGV[1] == '' then
  -- The group exists before the first entry, so the drainers see every entry. A drainer
  -- may have made it already (BUSYGROUP); any other error stops here, before any write.
  local made = redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[16], '0', 'MKSTREAM')
  if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP') then
    return redis.error_reply(made.err)
  end
  redis.call('HSET', hash, 'spec', ARGV[15])
end
local change
if ARGV[5] == '' then
  redis.call('HSET', hash, 't', fmt(clock))
else
  change = stamp(ARGV[7])
  redis.call('HSET', hash, 't', fmt(clock), 'v', ARGV[5], 'seq', ARGV[6], 'last', change,
    'final', ARGV[11])
  redis.call('XADD', KEYS[2], '*', 'c', change)
end
if ARGV[8] ~= '' then
  -- Back to ARGV[9] entries once it holds twice that: one LTRIM per ARGV[9] pushes.
  local keep = tonumber(ARGV[9])
  if redis.call('LPUSH', KEYS[3], stamp(ARGV[8])) > 2 * keep then
    redis.call('LTRIM', KEYS[3], 0, keep - 1)
  end
end
if ARGV[12] ~= '' then
  redis.call('SET', rec, stamp(ARGV[12]), 'EX', ARGV[13])
  redis.call('ZADD', KEYS[5], fmt(clock + tonumber(ARGV[13]) * 1000), rec)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. fmt(clock))
end
if change then redis.call(ARGV[19] == 's' and 'SPUBLISH' or 'PUBLISH', ARGV[10], change) end
return { 'ok', fmt(clock) }
