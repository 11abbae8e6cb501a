#!lua
-- common.lua: the rules of gavel-core (crates/gavel-core/src/rules.rs), restated in Lua.
--
-- Not a script of its own: the engine prepends it to every script that decides anything
-- (see redis/mod.rs), so each script stays one atomic EVALSHA. The `#!lua` line makes
-- Redis 7 treat every script as a write script with the default `deny-oom`: under
-- `maxmemory` pressure the script is refused before it runs, never stopped half-written.
--
-- Numbers. Every amount, time, seq and count is stored and travels as a decimal string.
-- In here they are Lua numbers (IEEE doubles), exact for integers up to 2^53 - 1, which is
-- gavel-core's MAX_AMOUNT; sums saturate at it exactly as Money::saturating_add does.
-- Numbers go back to strings with string.format('%.0f'), never through cjson, whose
-- encoder keeps only 14 significant digits. cjson only ever sees tables of strings.
--
-- The auction hash (KEYS[1] of every script) holds:
--   spec   the AuctionSpec as serde JSON (written by Rust, never read here)
--   rules  what the rules need of the spec, flat strings (see wire.rs: WireRules)
--   state  the AuctionState, flat strings (see wire.rs: WireState)
--   last   the last change as published (see wire.rs: WireChange), for resyncs

local MAX = 9007199254740991
local RECENT = 50

local function fmt(n)
  return string.format('%.0f', n)
end

local function num(s)
  if s == nil then return nil end
  return tonumber(s)
end

-- Money::saturating_add. a + b may exceed 2^53 and round, but rounding is monotonic and
-- 2^53 is exact, so the comparison with MAX is still right.
local function sat(a, b)
  local s = a + b
  if s > MAX then return MAX end
  return s
end

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split_numbers(s)
  local out = {}
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = tonumber(part) end
  return out
end

local function copy(a)
  local t = {}
  for k, v in pairs(a) do t[k] = v end
  return t
end

-- The auction as one table of numbers and strings (nil for None).
local function load_auction(rules_json, state_json)
  local r = cjson.decode(rules_json)
  local s = cjson.decode(state_json)
  return {
    sp = num(r.sp), incf = split_numbers(r.incf), inca = split_numbers(r.inca),
    sa = num(r.sa), oe = num(r.oe), res = num(r.res), bn = num(r.bn),
    scw = num(r.scw), sce = num(r.sce), scm = num(r.scm),
    status = s.status, price = num(s.price), lid = s.lid, lname = s.lname,
    lmax = num(s.lmax), count = num(s.count), seq = num(s.seq), ends = num(s.ends),
    cr = s.cr, cat = num(s.cat), wid = s.wid, wname = s.wname, fp = num(s.fp), by = s.by,
  }
end

-- The state back as flat strings (WireState).
local function state_table(a)
  local t = { status = a.status, count = fmt(a.count), seq = fmt(a.seq), ends = fmt(a.ends) }
  if a.price ~= nil then t.price = fmt(a.price) end
  if a.lid ~= nil then t.lid = a.lid; t.lname = a.lname end
  if a.lmax ~= nil then t.lmax = fmt(a.lmax) end
  if a.cr ~= nil then
    t.cr = a.cr
    t.cat = fmt(a.cat)
    if a.wid ~= nil then t.wid = a.wid; t.wname = a.wname end
    if a.fp ~= nil then t.fp = fmt(a.fp) end
    if a.by ~= nil then t.by = a.by end
  end
  return t
end

-- Auction::status_at: the clock decides.
local function status_at(a, now)
  if a.cr ~= nil or now >= a.ends then return 'closed' end
  if now < a.sa then return 'scheduled' end
  return 'open'
end

-- IncrementPolicy::at: the last band starting at or below the price.
local function inc_at(a, price)
  for i = #a.incf, 1, -1 do
    if a.incf[i] <= price then return a.inca[i] end
  end
  if #a.inca > 0 then return a.inca[1] end
  return 1
end

-- Auction::min_bid
local function min_bid_of(a)
  if a.price == nil then return a.sp end
  return sat(a.price, inc_at(a, a.price))
end

-- Auction::reserve_met: nil without a reserve, else true/false.
local function reserve_met(a)
  if a.res == nil then return nil end
  return a.price ~= nil and a.price >= a.res
end

-- rules::buy_now_available
local function buy_now_available(a)
  if a.bn == nil or a.cr ~= nil then return false end
  if a.price ~= nil and a.price >= a.bn then return false end
  return a.count == 0 or reserve_met(a) == false
end

-- rules::jump_to_reserve
local function jump_to_reserve(a)
  if a.res ~= nil and a.lmax ~= nil and a.price ~= nil and a.lmax >= a.res and a.price < a.res then
    a.price = a.res
  end
end

-- rules::extend_for_soft_close: never shortens.
local function extend_for_soft_close(a, now)
  if a.scw == nil then return false end
  if now < a.ends - a.scw then return false end
  local new_end = now + a.sce
  if a.scm ~= nil then new_end = math.min(new_end, a.oe + a.scm) end
  if new_end > a.ends then
    a.ends = new_end
    return true
  end
  return false
end

-- rules::record_bid: a price-moving step. Returns the change.
local function record_bid(n, kind, now)
  n.status = 'open'
  n.count = n.count + 1
  n.seq = n.seq + 1
  local extended = extend_for_soft_close(n, now)
  return {
    a = n, ev = 'bid', ext = extended,
    entry = { seq = n.seq, lid = n.lid, lname = n.lname, amt = n.price, kind = kind, at = now },
  }
end

-- rules::close
local function close(a, reason, closed_at, by)
  local sold = reason ~= 'cancelled' and reserve_met(a) ~= false
  local n = copy(a)
  n.status = 'closed'
  n.seq = a.seq + 1
  n.cr = reason
  n.cat = closed_at
  n.wid, n.wname, n.fp = nil, nil, nil
  if sold and a.lid ~= nil then
    n.wid = a.lid
    n.wname = a.lname
    n.fp = a.price
  end
  n.by = by
  return { a = n, ev = 'closed' }
end

local function entry_table(e)
  return { seq = fmt(e.seq), lid = e.lid, lname = e.lname, amt = fmt(e.amt), kind = e.kind, at = fmt(e.at) }
end

-- Writes a decided change: state, last change, change log, recent bids, Pub/Sub.
-- keys: hash, log, recent. Called only after every check has passed.
local function commit(hash, log, recent, id, channel, c, bid_id, request_id)
  local st = state_table(c.a)
  local msg = { id = id, ev = c.ev, st = st }
  if c.entry ~= nil then
    msg.e = entry_table(c.entry)
    if c.ext then msg.ext = '1' else msg.ext = '0' end
    msg.bid = bid_id
    msg.req = request_id
  end
  local json = cjson.encode(msg)
  redis.call('HSET', hash, 'state', cjson.encode(st), 'last', json)
  redis.call('XADD', log, '*', 'c', json)
  if c.entry ~= nil then
    redis.call('LPUSH', recent, cjson.encode(msg.e))
    redis.call('LTRIM', recent, 0, RECENT - 1)
  end
  redis.call('PUBLISH', channel, json)
  return json
end

-- The next deadline `advance` acts on (deadline_of in memory.rs), as a string; '' if none.
local function deadline_of(a)
  if a.cr ~= nil then return '' end
  if a.status == 'scheduled' then return fmt(a.sa) end
  return fmt(a.ends)
end

