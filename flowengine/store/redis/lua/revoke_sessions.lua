-- Deletes every session of a user except those listed.
-- KEYS[1] the user's session set. ARGV[1] key prefix, ARGV[2..] session IDs to keep.
local keep = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[sid] then
    redis.call('DEL', ARGV[1] .. 's:' .. sid)
    redis.call('SREM', KEYS[1], sid)
  end
end
return 'ok'
