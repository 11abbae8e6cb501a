#!lua
-- replay_dead.lua: puts dead letters back into their auction's change log, for the
-- drainers to archive (once whatever made them undecodable is fixed). An operator tool:
--
--   redis-cli --eval replay_dead.lua '<p>:{<id>}:dead' '<p>:{<id>}:log' , [<dead-letter id>]
--
-- then `ZADD <p>:active NX <unix ms> <id>` so the drainers read that log again (a closed,
-- fully archived auction has left that set; a script may only touch its own slot).
--
-- KEYS[1]  dead-letter stream          KEYS[2]  change log stream (same hash tag)
-- ARGV[1]  optional: one dead-letter entry id; without it, every dead letter
--
-- Each entry is appended to the log with its original fields (not the `dead.*` ones) as a
-- new entry, then deleted from the dead-letter stream. Returns the number replayed.

local dead, log = KEYS[1], KEYS[2]
local entries
if ARGV[1] and ARGV[1] ~= '' then
  entries = redis.call('XRANGE', dead, ARGV[1], ARGV[1])
else
  entries = redis.call('XRANGE', dead, '-', '+')
end
local n = 0
for _, e in ipairs(entries) do
  local fields = {}
  local kv = e[2]
  for i = 1, #kv - 1, 2 do
    if string.sub(kv[i], 1, 5) ~= 'dead.' then
      fields[#fields + 1] = kv[i]
      fields[#fields + 1] = kv[i + 1]
    end
  end
  if #fields > 0 then
    redis.call('XADD', log, '*', unpack(fields))
  end
  redis.call('XDEL', dead, e[1])
  n = n + 1
end
return n
