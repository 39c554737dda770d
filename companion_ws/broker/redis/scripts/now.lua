-- The prefix of the presence scripts (KEYS[1] presence hash, KEYS[2] alive zset):
-- now, in ms on the Redis clock, which every process shares.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
