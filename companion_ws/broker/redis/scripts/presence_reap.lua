-- ARGV[1] at most this many: remove the entries whose heartbeat expired and answer
-- their info. Atomic, so each is answered to exactly one caller.
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if info then out[#out + 1] = info end
end
return out
