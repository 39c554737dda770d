-- The prefix of every script on a session's keys (KEYS[1] meta, KEYS[2] stream).
-- ARGV[1] seq, ARGV[2] epoch: where the session starts when its keys are missing;
-- ARGV[3] the keys' TTL (ms). With ARGV[2] empty, missing keys answer false: the
-- caller loads a seed and calls again. Leaves m = {seq, epoch}.
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
if not m[2] then
  if ARGV[2] == '' then return false end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'epoch', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  m = {ARGV[1], ARGV[2]}
end
