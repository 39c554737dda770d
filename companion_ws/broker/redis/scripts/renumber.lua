-- A history that went back (a failover to a replica that had not received its last
-- events): KEYS[1] meta, KEYS[2] stream; ARGV[1] the epoch it had, ARGV[2] a new one,
-- ARGV[3] the highest seq delivered from it, ARGV[4] the keys' TTL (ms). Unless another
-- process did it first (the epoch changed), the history is renamed and numbering goes
-- on after every number handed out, so none is ever reused. Answers 1 when renamed.
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
if m[2] ~= ARGV[1] then return 0 end
local seq = math.max(tonumber(m[1]), tonumber(ARGV[3]))
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'seq', seq, 'epoch', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
