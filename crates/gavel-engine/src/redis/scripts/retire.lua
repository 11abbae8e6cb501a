#!lua
-- retire.lua: a closed auction's keys leave Redis, once PostgreSQL holds all of it. Rust
-- twin: `retire.rs`, which first reads the auction from the archive and passes the seq
-- the archive holds; this script checks, in the same atomic step, that Redis agrees: the
-- auction is final at exactly that seq, its change log is empty (every entry was archived,
-- acknowledged and trimmed: `trim.lua`) and it has no dead letters. Only then is every key
-- of the auction deleted. Run again (a late retry, another node) it finds nothing and
-- deletes nothing that matters; a commit after it finds no auction and writes nothing
-- (commit.lua writes only on the version it expects).
--
-- KEYS[1] auction hash   KEYS[2] change log   KEYS[3] recent list   KEYS[4] dead letters
-- KEYS[5] index of the request records (their names; they share the hash tag)
-- ARGV[1] the seq the archive holds ('' when it holds none)
--
-- Returns 'retired', 'gone' (no auction: leftovers, if any, deleted), 'live' (not final),
-- 'behind' (the archive lacks a change), 'draining' (log entries left), 'dead' (dead
-- letters wait for an operator).

local hash, log, dead, reqs = KEYS[1], KEYS[2], KEYS[4], KEYS[5]
if redis.call('XLEN', dead) > 0 then return 'dead' end
if redis.call('XLEN', log) > 0 then return 'draining' end
local h = redis.call('HMGET', hash, 'final', 'seq')
local gone = not h[1] and not h[2]
if not gone then
  if h[1] ~= '1' then return 'live' end
  if h[2] ~= ARGV[1] then return 'behind' end
end
local recs = redis.call('ZRANGE', reqs, 0, -1)
for i = 1, #recs, 500 do
  redis.call('DEL', unpack(recs, i, math.min(i + 499, #recs)))
end
redis.call('DEL', hash, log, KEYS[3], dead, reqs)
if gone then return 'gone' end
return 'retired'
