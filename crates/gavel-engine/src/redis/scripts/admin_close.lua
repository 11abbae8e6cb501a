-- admin_close.lua: an admin cancels or ends an auction early (rules::cancel, rules::end_early).
--
-- KEYS[1]  auction hash        KEYS[2]  change log stream      KEYS[3]  recent bids list
-- ARGV[1]  now in ms, or '' for Redis TIME
-- ARGV[2]  auction id          ARGV[3]  Pub/Sub channel of the auction
-- ARGV[4]  action: cancelled | ended_early
-- ARGV[5]  the admin
--
-- Returns {'missing'}, {'closed'} when it had already ended, or {'changed', change JSON}.

local h = redis.call('HMGET', KEYS[1], 'rules', 'state')
if not h[1] then return { 'missing' } end
local a = load_auction(h[1], h[2])
local now = now_ms(ARGV[1])
if status_at(a, now) == 'closed' then return { 'closed' } end

local change = close(a, ARGV[4], now, ARGV[5])
local json = commit(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], change, nil, nil)
return { 'changed', json }
