-- The voice floor's compare-and-set, followed by publish.lua's lines (its ARGV[4..7]):
-- ARGV[8] '1' to compare, ARGV[9] the floor expected, ARGV[10] the new floor. When the
-- floor is another, nothing is published and the answer is {0, epoch, floor}.
local floor = redis.call('HGET', KEYS[1], 'floor') or ''
if ARGV[8] == '1' and floor ~= ARGV[9] then return {0, m[2], floor} end
redis.call('HSET', KEYS[1], 'floor', ARGV[10])
