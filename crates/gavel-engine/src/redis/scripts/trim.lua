#!lua
-- trim.lua: drops change-log entries every drainer has acknowledged, never a pending one.
--
-- A plain MAXLEN trim would delete entries still pending in the consumer group (read by a
-- drainer that has not written them to PostgreSQL yet). This trims strictly below the
-- oldest pending id or, when nothing is pending, up to the group's last delivered id:
-- below that point every entry was delivered and is not pending, so it was acknowledged.
--
-- KEYS[1]  change log stream   KEYS[2]  auction hash
-- ARGV[1]  the drainers' consumer group
--
-- Returns {entries trimmed, entries left, 1 if the log is empty and the auction is final}.
-- A final auction (the commit script sets `final` with its last change) logs nothing
-- more, so an empty log then means fully archived.

if redis.call('EXISTS', KEYS[1]) == 0 then return { 0, 0, 0 } end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local minid
if tonumber(pending[1]) > 0 then
  minid = pending[2]
else
  local last = nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, id = nil, nil
    for i = 1, #g - 1, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then id = g[i + 1] end
    end
    if name == ARGV[1] then last = id end
  end
  if last == nil then return { 0, redis.call('XLEN', KEYS[1]), 0 } end
  local ms, sq = string.match(last, '^(%d+)%-(%d+)$')
  minid = ms .. '-' .. string.format('%.0f', tonumber(sq) + 1)
end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', minid)
local left = redis.call('XLEN', KEYS[1])
local done = 0
if left == 0 then
  if redis.call('HGET', KEYS[2], 'final') == '1' then done = 1 end
end
return { trimmed, left, done }
