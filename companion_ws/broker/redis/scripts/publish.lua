-- ARGV[4] the frame (no seq), ARGV[5] its kind, ARGV[6] the stream's length, ARGV[7]
-- the channel, ARGV[8] PUBLISH (one Redis) or SPUBLISH (a cluster: the channel is on
-- the session's shard). Splices the seq into the frame: the bytes every client gets, returned.
local epoch = m[2]
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[4], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[6], seq .. '-0', 'k', ARGV[5], 'p', payload)
redis.call(ARGV[8], ARGV[7], seq .. ' ' .. epoch .. ' ' .. ARGV[5] .. ' ' .. payload)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {seq, epoch, payload}
