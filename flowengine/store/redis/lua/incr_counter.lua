-- Counts within a fixed window. KEYS[1] counter hash.
-- ARGV[1] now (ms, the store's clock), ARGV[2] window (ms).
local now = tonumber(ARGV[1])
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp') or '0')
if exp <= now then
  redis.call('DEL', KEYS[1])
  exp = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'exp', exp)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
