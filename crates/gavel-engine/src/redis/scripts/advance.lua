-- advance.lua: opens or closes one auction whose start or end has passed
-- (rules::open_if_due, then rules::close_if_due). Atomic, so each transition happens once
-- however many nodes run it at the same moment.
--
-- KEYS[1]  auction hash        KEYS[2]  change log stream      KEYS[3]  recent bids list
-- ARGV[1]  now in ms, or '' for Redis TIME
-- ARGV[2]  auction id          ARGV[3]  Pub/Sub channel of the auction
--
-- Returns {'missing'}, {'wait', next deadline or ''} when nothing is due, or
-- {'changed', change JSON, next deadline or ''}.

local h = redis.call('HMGET', KEYS[1], 'rules', 'state')
if not h[1] then return { 'missing' } end
local a = load_auction(h[1], h[2])
local now = now_ms(ARGV[1])

local change = nil
if a.status == 'scheduled' and status_at(a, now) == 'open' then
  local n = copy(a)
  n.status = 'open'
  n.seq = a.seq + 1
  change = { a = n, ev = 'opened' }
elseif a.cr == nil and now >= a.ends then
  -- The clock refused bids from ends_at on; this records the result at ends_at.
  change = close(a, 'ended', a.ends, nil)
end
if change == nil then return { 'wait', deadline_of(a) } end

local json = commit(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], change, nil, nil)
return { 'changed', json, deadline_of(change.a) }
