-- Replaces the flow configuration and applies seed users, all or nothing.
-- KEYS[1] config key, KEYS[2] set of user IDs.
-- ARGV[1] key prefix, ARGV[2] config JSON, ARGV[3] the revision the caller
-- merged onto (sha1 of the stored JSON, "" if none), then per user seven values:
-- ID, record JSON ("" to leave the stored user as it is), normalized username,
-- normalized email ("" if none), the ID the username index held when the caller
-- read it ("" if none), the user record the caller read ("" if none), and "1"
-- if the write deactivates the user (their sessions are deleted).
local p = ARGV[1]
local n = (#ARGV - 3) / 7
-- Check everything first, so a conflict changes nothing.
local cur = redis.call('GET', KEYS[1])
local rev = ''
if cur then rev = redis.sha1hex(cur) end
if rev ~= ARGV[3] then return 'stale' end
local emails = {}
for i = 0, n - 1 do
  local b = 4 + i*7
  local id, rec, kn, ke, seen, seenrec = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4], ARGV[b+5]
  -- The caller merged onto what it read: if the user changed since, read again.
  local owner = redis.call('GET', p .. 'un:' .. kn) or ''
  if owner ~= seen then return 'retry' end
  if seen ~= '' and (redis.call('GET', p .. 'u:' .. seen) or '') ~= seenrec then return 'retry' end
  if rec ~= '' and ke ~= '' then
    local eo = redis.call('GET', p .. 'ue:' .. ke)
    if (eo and eo ~= id) or emails[ke] then return 'conflict:email:' .. ke end
    emails[ke] = true
  end
end
for i = 0, n - 1 do
  local b = 4 + i*7
  local id, rec, kn, ke, deactivate = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+6]
  if rec ~= '' then
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
    if deactivate == '1' then
      for _, sid in ipairs(redis.call('SMEMBERS', p .. 'us:' .. id)) do
        redis.call('DEL', p .. 's:' .. sid)
      end
      redis.call('DEL', p .. 'us:' .. id)
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 'ok'
