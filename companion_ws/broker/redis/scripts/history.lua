-- ARGV[4] after this seq, ARGV[5] at most this many entries. Answers the position, the
-- id of the oldest entry kept (false when none) and the entries.
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local after = tonumber(ARGV[4])
local entries = {}
if after < tonumber(m[1]) and tonumber(ARGV[5]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], tostring(after + 1), '+', 'COUNT', ARGV[5])
end
local first_id = false
if #first > 0 then first_id = first[1][1] end
return {m[1], m[2], first_id, entries}
