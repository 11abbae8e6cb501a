#!lua
-- dead_letter.lua: moves one change-log entry the drainer cannot decode into the auction's
-- dead-letter stream, in one step. Rust twin: `ChangeLog::dead_letter` (log/dead_letter.rs).
--
-- The entry is acknowledged (no drainer reads it again), copied with every field it had
-- plus why it was moved, and deleted from the log (history reads of the log no longer
-- meet it). The dead-letter stream shares the log's hash tag, so this is one slot and
-- atomic: an entry is never both gone from the log and missing from the dead letters.
--
-- KEYS[1]  change log stream          KEYS[2]  dead-letter stream (same hash tag)
-- ARGV[1]  the drainers' consumer group
-- ARGV[2]  the entry's id in the log
-- ARGV[3]  why it cannot be decoded
-- ARGV[4]  the drainer (consumer) that moved it
-- ARGV[5]  when, in Unix ms
--
-- Returns 1 when moved, 0 when the entry was no longer pending (another drainer already
-- archived or moved it: nothing is written).
-- Dead-letter fields: the original fields unchanged, then `dead.entry`, `dead.reason`,
-- `dead.consumer`, `dead.at` (replay_dead.lua copies back every field not named `dead.*`).

local log, dead = KEYS[1], KEYS[2]
local group, entry, reason, consumer, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('XACK', log, group, entry) == 0 then return 0 end
local fields = {}
local found = redis.call('XRANGE', log, entry, entry)
if found[1] then
  for _, v in ipairs(found[1][2]) do fields[#fields + 1] = v end
end
for _, v in ipairs({ 'dead.entry', entry, 'dead.reason', reason, 'dead.consumer', consumer,
                     'dead.at', at }) do
  fields[#fields + 1] = v
end
redis.call('XADD', dead, '*', unpack(fields))
redis.call('XDEL', log, entry)
return 1
