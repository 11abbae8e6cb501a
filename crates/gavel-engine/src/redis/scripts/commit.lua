#!lua
-- commit.lua: the one script that changes an auction. A compare-and-swap, nothing more:
-- the node has decided with gavel-core's rules (Rust) and sends what to write; this script
-- only checks that nothing moved since the node read the auction, then writes it all in
-- one atomic step. It knows no auction rule and never parses the JSON it stores.
--
-- KEYS[1] auction hash   KEYS[2] change log   KEYS[3] recent list   KEYS[4] request record
-- ARGV[1]  seq the node decided on ('0': the auction must not exist yet)
-- ARGV[2]  the decision's time (ms)   ARGV[3] how far it may run ahead of the clock (ms)
-- ARGV[4]  '' to read Redis TIME; tests pass their frozen clock's time (ms)
-- ARGV[5]  new seq ('' when nothing changes)   ARGV[6] change JSON (log, publish, 'last')
-- ARGV[7]  history entry for the recent list ('' = none)   ARGV[8] entries kept there
-- ARGV[9]  Pub/Sub channel   ARGV[10] '1' when this change is the auction's last one
-- ARGV[11] reply to record ('' = none)   ARGV[12] its TTL (s)
-- ARGV[13] a recorded reply it may replace ('' = none)
-- ARGV[14] spec JSON, ARGV[15] the drainers' consumer group (creation only)
--
-- The auction's clock is max(TIME, t): it never runs backwards, even if Redis TIME does.
-- The decision's time must lie in [clock, clock + ARGV[3]]; the clock then becomes it.
-- Times here are milliseconds of "now" (below 2^41), exact as Lua doubles; seqs are
-- compared as strings.
--
-- Returns {'ok', TIME}, {'moved', seq or '', last change or '', clock, TIME}, or
-- {'repeat', record, seq or '', last change or ''}.

local hash, rec = KEYS[1], KEYS[4]
if ARGV[11] ~= '' then
  local prev = redis.call('GET', rec)
  if prev and prev ~= ARGV[13] then
    local h = redis.call('HMGET', hash, 'seq', 'last')
    return { 'repeat', prev, h[1] or '', h[2] or '' }
  end
end

local h = redis.call('HMGET', hash, 'seq', 't')
local time
if ARGV[4] ~= '' then
  time = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  time = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local clock = math.max(time, tonumber(h[2] or '0'))
local at = tonumber(ARGV[2])
if (h[1] or '0') ~= ARGV[1] or at < clock or at > clock + tonumber(ARGV[3]) then
  -- Keep the clock where it was seen, so an answer given at it stays true.
  if h[1] and clock > tonumber(h[2] or '0') then
    redis.call('HSET', hash, 't', string.format('%.0f', clock))
  end
  local last = redis.call('HGET', hash, 'last') or ''
  return { 'moved', h[1] or '', last, string.format('%.0f', clock), string.format('%.0f', time) }
end

if ARGV[1] == '0' then
  -- The group exists before the first entry, so the drainers see every entry. A drainer
  -- may have made it already (BUSYGROUP); any other error stops here, before any write.
  local made = redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[15], '0', 'MKSTREAM')
  if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP') then
    return redis.error_reply(made.err)
  end
  redis.call('HSET', hash, 'spec', ARGV[14])
end
redis.call('HSET', hash, 't', ARGV[2])
if ARGV[5] ~= '' then
  redis.call('HSET', hash, 'seq', ARGV[5], 'last', ARGV[6])
  redis.call('XADD', KEYS[2], '*', 'c', ARGV[6])
  if ARGV[10] == '1' then redis.call('HSET', hash, 'final', '1') end
end
if ARGV[7] ~= '' then
  redis.call('LPUSH', KEYS[3], ARGV[7])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
end
if ARGV[11] ~= '' then redis.call('SET', rec, ARGV[11], 'EX', ARGV[12]) end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[9], ARGV[6]) end
return { 'ok', string.format('%.0f', time) }
