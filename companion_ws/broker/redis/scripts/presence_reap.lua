-- ARGV[1] at most this many: remove the entries whose heartbeat expired and answer
-- their info. Atomic, so each is answered to exactly one caller. Each reaped id is
-- remembered in KEYS[3] for ARGV[2] ms, so that its process, if it only stalled,
-- learns on its next renewal that the entry was announced gone.
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], now, id)
  if info then out[#out + 1] = info end
end
if #ids > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - tonumber(ARGV[2])))
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return out
