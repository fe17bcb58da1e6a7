-- Deletes a user, its indexes and every session of theirs.
-- KEYS[1] user record, KEYS[2] the user's session set, KEYS[3] set of user IDs.
-- ARGV[1] user ID, ARGV[2] key prefix.
local raw = redis.call('GET', KEYS[1])
if not raw then return 'notfound' end
local rec = cjson.decode(raw)
redis.call('DEL', ARGV[2] .. 'un:' .. rec.kn)
if rec.ke ~= '' then redis.call('DEL', ARGV[2] .. 'ue:' .. rec.ke) end
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[2] .. 's:' .. sid)
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 'ok'
