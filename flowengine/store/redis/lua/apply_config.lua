-- Replaces the flow configuration and upserts seed users, all or nothing.
-- KEYS[1] config key, KEYS[2] set of user IDs.
-- ARGV[1] key prefix, ARGV[2] config JSON, ARGV[3] the revision the caller
-- merged onto (sha1 of the stored JSON, "" if none), then per user five values:
-- ID, record JSON, normalized username, normalized email ("" if none), and the
-- ID the username index held when the caller read it ("" if none).
local p = ARGV[1]
local n = (#ARGV - 3) / 5
-- Check everything first, so a conflict changes nothing.
local cur = redis.call('GET', KEYS[1])
local rev = ''
if cur then rev = redis.sha1hex(cur) end
if rev ~= ARGV[3] then return 'stale' end
local emails = {}
for i = 0, n - 1 do
  local id, kn, ke, seen = ARGV[4 + i*5], ARGV[6 + i*5], ARGV[7 + i*5], ARGV[8 + i*5]
  local owner = redis.call('GET', p .. 'un:' .. kn) or ''
  if owner ~= seen then return 'retry' end
  if ke ~= '' then
    local eo = redis.call('GET', p .. 'ue:' .. ke)
    if (eo and eo ~= id) or emails[ke] then return 'conflict:email:' .. ke end
    emails[ke] = true
  end
end
for i = 0, n - 1 do
  local id, rec, kn, ke = ARGV[4 + i*5], ARGV[5 + i*5], ARGV[6 + i*5], ARGV[7 + i*5]
  local oldraw = redis.call('GET', p .. 'u:' .. id)
  if oldraw then
    local old = cjson.decode(oldraw)
    if old.ke ~= '' and old.ke ~= ke and redis.call('GET', p .. 'ue:' .. old.ke) == id then
      redis.call('DEL', p .. 'ue:' .. old.ke)
    end
  end
  redis.call('SET', p .. 'u:' .. id, rec)
  redis.call('SET', p .. 'un:' .. kn, id)
  if ke ~= '' then redis.call('SET', p .. 'ue:' .. ke, id) end
  redis.call('SADD', KEYS[2], id)
end
redis.call('SET', KEYS[1], ARGV[2])
return 'ok'
