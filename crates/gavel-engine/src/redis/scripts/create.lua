-- create.lua: adds a new auction at seq 1 and logs its creation.
--
-- KEYS[1]  auction hash        KEYS[2]  change log stream
-- ARGV[1]  auction id          ARGV[2]  Pub/Sub channel of the auction
-- ARGV[3]  spec (serde JSON)   ARGV[4]  rules (WireRules JSON)   ARGV[5]  state (WireState JSON)
-- ARGV[6]  the drainers' consumer group
--
-- Returns {'exists'} or {'created', change JSON}. The consumer group is created with the
-- stream, before the first entry, so the drainers see every entry of every auction.

if redis.call('EXISTS', KEYS[1]) == 1 then return { 'exists' } end
local need_group = true
if redis.call('EXISTS', KEYS[2]) == 1 then
  -- A drainer may have created the group already (it does so for a registered auction
  -- whose stream it cannot find yet).
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[2])) do
    for i = 1, #g - 1, 2 do
      if g[i] == 'name' and g[i + 1] == ARGV[6] then need_group = false end
    end
  end
end

local st = cjson.decode(ARGV[5])
local json = cjson.encode({ id = ARGV[1], ev = 'created', st = st })
redis.call('HSET', KEYS[1], 'spec', ARGV[3], 'rules', ARGV[4], 'state', ARGV[5], 'last', json)
if need_group then redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[6], '0', 'MKSTREAM') end
redis.call('XADD', KEYS[2], '*', 'c', json)
redis.call('PUBLISH', ARGV[2], json)
return { 'created', json }
