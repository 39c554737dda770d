-- The voice floor's compare-and-set, followed by publish.lua's lines (its ARGV[4..8]):
-- ARGV[9] '1' to compare, ARGV[10] the floor expected, ARGV[11] the new floor. When the
-- floor is another, nothing is published and the answer is {0, epoch, floor}.
local floor = redis.call('HGET', KEYS[1], 'floor') or ''
if ARGV[9] == '1' and floor ~= ARGV[10] then return {0, m[2], floor} end
redis.call('HSET', KEYS[1], 'floor', ARGV[11])
