"""Lua scripts of ``RedisBroker``: publish-with-history and history reads, each one atomic step.

Epochs are generated in Python and passed in ARGV because Lua's ``math.random`` is seeded the
same way on every call inside Redis.
"""

from __future__ import annotations

__all__ = ["OFFSETS_SCRIPT", "PUBLISH_SCRIPT", "READ_SCRIPT"]

# KEYS: epoch, seq, stream[, idempotency]
# ARGV: pubsub channel, fresh epoch, envelope JSON, history size, history ttl, "1" = keep history, idempotency ttl
# Returns the new offset "<epoch>:<seq>" ("" without history) and 1, or the first publish's offset and 0
# when the idempotency key was already used.
PUBLISH_SCRIPT = """
local idem = KEYS[4]
if idem then
  local previous = redis.call('GET', idem)
  if previous then return {previous, 0} end
end
local payload = ARGV[3]
local offset = ''
if ARGV[6] == '1' then
  local epoch = ARGV[2]
  if redis.call('SET', KEYS[1], epoch, 'NX') then
    -- a new life of this channel's history: whatever seq or stream is left belongs to the old one
    redis.call('DEL', KEYS[2], KEYS[3])
  else
    epoch = redis.call('GET', KEYS[1])
  end
  local seq = redis.call('INCR', KEYS[2])
  offset = epoch .. ':' .. seq
  payload = '{"offset":"' .. offset .. '",' .. string.sub(ARGV[3], 2)
  redis.call('XADD', KEYS[3], 'MAXLEN', '=', ARGV[4], '0-' .. seq, 'e', payload)
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
if idem then
  redis.call('SET', idem, offset, 'EX', ARGV[7])
end
redis.call('PUBLISH', ARGV[1], payload)
return {offset, 1}
"""

# KEYS: epoch, seq, stream
# ARGV: fresh epoch, history ttl, reader's epoch, reader's seq
# Returns {epoch, seq, entries}; entries are after the reader's seq when the reader's epoch is the
# current one, else every entry held. (Current offsets alone: OFFSETS_SCRIPT, many channels per call.)
READ_SCRIPT = """
local epoch = ARGV[1]
if redis.call('SET', KEYS[1], epoch, 'NX', 'EX', ARGV[2]) then
  redis.call('DEL', KEYS[2], KEYS[3])
else
  epoch = redis.call('GET', KEYS[1])
end
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = '-'
if ARGV[3] == epoch then start = '(0-' .. ARGV[4] end
return {epoch, seq, redis.call('XRANGE', KEYS[3], start, '+')}
"""

# The current offsets of many channels in one call (a connect burst reads hundreds), each epoch
# created as READ_SCRIPT creates it.
# KEYS: epoch, seq, stream of each channel in turn
# ARGV: history ttl, then one fresh epoch per channel
# Returns {epoch1, seq1, epoch2, seq2, ...}
OFFSETS_SCRIPT = """
local out = {}
for i = 1, #KEYS, 3 do
  local epoch = ARGV[(i + 2) / 3 + 1]
  if redis.call('SET', KEYS[i], epoch, 'NX', 'EX', ARGV[1]) then
    redis.call('DEL', KEYS[i + 1], KEYS[i + 2])
  else
    epoch = redis.call('GET', KEYS[i])
  end
  out[#out + 1] = epoch
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
end
return out
"""
