-- Writes a user and its unique indexes atomically; an update that deactivates
-- the user deletes their sessions in the same step.
-- KEYS[1] user record, KEYS[2] username index, KEYS[3] email index ("" key
-- allowed: ARGV[4] says whether it is used), KEYS[4] set of user IDs,
-- KEYS[5] the user's session set.
-- ARGV[1] user ID, ARGV[2] record JSON, ARGV[3] "create" or "update",
-- ARGV[4] "1" if the user has an email, ARGV[5] key prefix, ARGV[6] "1" if the
-- user is active, ARGV[7] for an update the exact record it may replace ("" or
-- absent: any), else 'changed' and nothing is written.
local id = ARGV[1]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[3] == 'create' and exists then return 'conflict:id' end
if ARGV[3] == 'update' and not exists then return 'notfound' end
local expected = ARGV[7] or ''
if ARGV[3] == 'update' and expected ~= '' and redis.call('GET', KEYS[1]) ~= expected then return 'changed' end
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= id then return 'conflict:username' end
if ARGV[4] == '1' then
  owner = redis.call('GET', KEYS[3])
  if owner and owner ~= id then return 'conflict:email' end
end
local deactivated = false
if exists then
  local old = cjson.decode(redis.call('GET', KEYS[1]))
  if redis.call('GET', ARGV[5] .. 'un:' .. old.kn) == id then redis.call('DEL', ARGV[5] .. 'un:' .. old.kn) end
  if old.ke ~= '' and redis.call('GET', ARGV[5] .. 'ue:' .. old.ke) == id then redis.call('DEL', ARGV[5] .. 'ue:' .. old.ke) end
  deactivated = old.user.is_active == true and ARGV[6] ~= '1'
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], id)
if ARGV[4] == '1' then redis.call('SET', KEYS[3], id) end
redis.call('SADD', KEYS[4], id)
if deactivated then
  for _, sid in ipairs(redis.call('SMEMBERS', KEYS[5])) do
    redis.call('DEL', ARGV[5] .. 's:' .. sid)
  end
  redis.call('DEL', KEYS[5])
end
return 'ok'
