-- The info of every entry whose expiry is not past.
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then out[#out + 1] = info end
end
return out
