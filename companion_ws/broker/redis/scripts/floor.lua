-- The session's voice floor (docs/protocol.md section 17), '' for none (in a table: a
-- bare '' would read as the missing keys' false).
return {redis.call('HGET', KEYS[1], 'floor') or ''}
