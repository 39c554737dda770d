-- ARGV[1] entry TTL (ms), ARGV[2] key TTL (ms), ARGV[3] '1' to add, '0' to renew,
-- then connection_id, info pairs: add or renew those entries. Renewing never re-adds an
-- entry that another process reaped (announced gone, KEYS[3]) while this one stalled:
-- those ids are answered instead, for the node to close their connections.
local lost = {}
for i = 4, #ARGV, 2 do
  if ARGV[3] == '0' and redis.call('ZSCORE', KEYS[3], ARGV[i]) then
    lost[#lost + 1] = ARGV[i]
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return lost
