-- place_bid.lua: decides one bid (rules::place_bid) in one atomic step.
--
-- KEYS[1]  auction hash        <prefix>:{<auction>}:a
-- KEYS[2]  change log stream   <prefix>:{<auction>}:log
-- KEYS[3]  recent bids list    <prefix>:{<auction>}:recent
-- KEYS[4]  idempotency record  <prefix>:{<auction>}:req:<bidder>:<request_id>
-- ARGV[1]  now in ms, or '' for Redis TIME (production always uses TIME)
-- ARGV[2]  auction id
-- ARGV[3]  Pub/Sub channel of the auction
-- ARGV[4]  bidder id           ARGV[5]  bidder display name
-- ARGV[6]  amount (integer string, 1..2^53-1)
-- ARGV[7]  kind: plain | max | buy_now
-- ARGV[8]  expected seq, or ''
-- ARGV[9]  request id          ARGV[10] bid id (server-generated, used if an entry is made)
-- ARGV[11] seconds to keep the idempotency record
--
-- Returns {'missing'}, {'repeat', reply} (the first reply, verbatim) or {'new', reply},
-- where reply is the JSON {o = outcome code, p = its parameter, st = state at decision}.
-- Every check runs before the first write: Redis has no rollback.

local stored = redis.call('GET', KEYS[4])
local h = redis.call('HMGET', KEYS[1], 'rules', 'state')
if stored then
  -- As in memory.rs: once the auction's closing is recorded, only accepted requests keep
  -- their first answer; a retried rejection is decided again (and answered `closed`).
  if not h[1] or cjson.decode(stored).o == 'ok' or cjson.decode(h[2]).cr == nil then
    return { 'repeat', stored }
  end
end
if not h[1] then return { 'missing' } end

local a = load_auction(h[1], h[2])
local now = now_ms(ARGV[1])
local r = {
  bid = ARGV[4], bname = ARGV[5], amount = tonumber(ARGV[6]), kind = ARGV[7], exp = ARGV[8],
}

local function buy_now(a, r, now)
  if not buy_now_available(a) then return 'buy_now_unavailable' end
  if r.amount ~= a.bn then return 'buy_now_price', fmt(a.bn) end
  local n = copy(a)
  n.status = 'closed'
  n.price = a.bn
  n.lid, n.lname, n.lmax = r.bid, r.bname, nil
  n.count = a.count + 1
  n.seq = a.seq + 1
  n.cr, n.cat, n.wid, n.wname, n.fp, n.by = 'buy_now', now, r.bid, r.bname, a.bn, nil
  return 'ok', nil, {
    a = n, ev = 'bid', ext = false,
    entry = { seq = n.seq, lid = r.bid, lname = r.bname, amt = a.bn, kind = 'buy_now', at = now },
  }
end

local function raise_own_max(a, r, now)
  local current = a.lmax or a.price or a.sp
  if r.amount <= current then return 'max_not_raised', fmt(current) end
  local n = copy(a)
  n.lmax = r.amount
  local before = n.price
  jump_to_reserve(n)
  if n.price ~= before then return 'ok', nil, record_bid(n, 'auto', now) end
  n.seq = n.seq + 1
  n.status = 'open'
  return 'ok', nil, { a = n, ev = 'max_raised' }
end

local function competitive(a, r, now)
  if a.lid ~= nil and a.lid == r.bid then
    if r.kind == 'max' then return raise_own_max(a, r, now) end
    return 'already_leading'
  end
  local min_bid = min_bid_of(a)
  -- At the cap min_bid saturates to the price itself: a bid that cannot raise the price
  -- is too low all the same.
  if r.amount < min_bid or (a.price ~= nil and r.amount <= a.price) then
    return 'outbid', fmt(min_bid)
  end
  local n = copy(a)
  local wins
  if a.lid ~= nil and a.price ~= nil then
    local standing = a.lmax or a.price
    if r.amount > standing then
      wins = true
      if r.kind == 'max' then
        n.price = math.min(r.amount, sat(standing, inc_at(a, standing)))
      else
        n.price = r.amount
      end
    else
      -- The standing maximum holds; ties go to the earlier bidder.
      wins = false
      n.price = math.min(standing, sat(r.amount, inc_at(a, r.amount)))
    end
  else
    wins = true
    if r.kind == 'max' then n.price = a.sp else n.price = r.amount end
  end
  if wins then
    n.lid, n.lname = r.bid, r.bname
    if r.kind == 'max' then n.lmax = r.amount else n.lmax = nil end
  end
  jump_to_reserve(n)
  local kind = 'auto'
  if wins and r.kind == 'plain' then kind = 'bid' end
  local c = record_bid(n, kind, now)
  if wins then return 'ok', nil, c end
  return 'outbid', fmt(min_bid_of(c.a)), c
end

local function decide(a, r, now)
  local s = status_at(a, now)
  if s == 'scheduled' then return 'not_open' end
  if s == 'closed' then return 'closed' end
  if r.exp ~= '' and tonumber(r.exp) ~= a.seq then return 'stale', fmt(a.seq) end
  if r.kind == 'buy_now' then return buy_now(a, r, now) end
  return competitive(a, r, now)
end

local outcome, param, change = decide(a, r, now)

-- Writes from here on.
local after = a
if change ~= nil then
  after = change.a
  local request_id = nil
  if outcome == 'ok' then request_id = ARGV[9] end
  commit(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], change, ARGV[10], request_id)
end
local reply = cjson.encode({ o = outcome, p = param, st = state_table(after) })
redis.call('SET', KEYS[4], reply, 'EX', ARGV[11])
return { 'new', reply }
