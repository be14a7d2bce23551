"""Lua scripts of ``RedisBroker``: publish-with-history, history reads and offset reads, each one atomic step.

Key layout (``channels/redis_layout.py``): every key of a channel is tagged ``{<prefix>:<channel>}``,
the name producers publish to, so a channel's keys, its scripts and its sharded publish all live on
the one shard that owns that slot in a Redis Cluster.

Epochs survive only the master that wrote them. The epoch key holds ``"<epoch> <replication id>"``:
a master promoted by a failover (Sentinel or Cluster) has a new replication id, and replication is
asynchronous, so its copy of a channel may lack the last events subscribers already saw. Reusing
their sequence numbers would make clients drop new events as duplicates. Each script reads the
master's replication id (``INFO replication``) and starts a new epoch for a channel whose epoch was
written under another id, so clients are told ``recovered: false`` and refetch over REST instead.
A master restarted without persistence has lost the keys anyway; one restarted from its RDB keeps
its id and its epochs.

Fresh epochs are generated in Python and passed in ARGV because Lua's ``math.random`` is seeded
the same way on every call inside Redis.
"""

from __future__ import annotations

__all__ = ["OFFSETS_SCRIPT", "PUBLISH_SCRIPT", "READ_SCRIPT"]

# The channel's epoch under this master: the stored one if this master's replication history wrote
# it, else a fresh one (creating it deletes whatever seq and stream are left of an older life).
_EPOCH = """
local function replication_id()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or '?'
end
local function channel_epoch(epoch_key, seq_key, stream_key, fresh, ttl, replid)
  local stored = redis.call('GET', epoch_key)
  if stored then
    local epoch, owner = string.match(stored, '^(%S+) (%S+)$')
    if owner == replid then return epoch end
  end
  redis.call('SET', epoch_key, fresh .. ' ' .. replid, 'EX', ttl)
  redis.call('DEL', seq_key, stream_key)
  return fresh
end
"""

# KEYS: epoch, seq, stream[, idempotency]
# ARGV: pubsub channel, fresh epoch, envelope JSON, history size, history ttl, "1" = keep history,
#       idempotency ttl, publish command (PUBLISH, or SPUBLISH on a cluster)
# Returns the new offset "<epoch>:<seq>" ("" without history) and 1, or the first publish's offset
# and 0 when the idempotency key was already used.
PUBLISH_SCRIPT = (
    _EPOCH
    + """
local idem = KEYS[4]
if idem then
  local previous = redis.call('GET', idem)
  if previous then return {previous, 0} end
end
local payload = ARGV[3]
local offset = ''
if ARGV[6] == '1' then
  local epoch = channel_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[5], replication_id())
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
redis.call(ARGV[8], ARGV[1], payload)
return {offset, 1}
"""
)

# KEYS: epoch, seq, stream
# ARGV: fresh epoch, history ttl, reader's epoch, reader's seq
# Returns {epoch, seq, entries}; entries are after the reader's seq when the reader's epoch is the
# current one, else every entry held.
READ_SCRIPT = (
    _EPOCH
    + """
local epoch = channel_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], replication_id())
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local start = '-'
if ARGV[3] == epoch then start = '(0-' .. ARGV[4] end
return {epoch, seq, redis.call('XRANGE', KEYS[3], start, '+')}
"""
)

# The current offsets of many channels in one call (a connect burst reads hundreds). The keys come
# in ARGV, not KEYS: on a cluster one call serves every channel of one node, whatever their slots
# (allow-cross-slot-keys), and the replication id is read once for all of them.
# ARGV: history ttl, then per channel its epoch, seq and stream keys and a fresh epoch
# Returns {epoch1, seq1, epoch2, seq2, ...}
OFFSETS_SCRIPT = (
    "#!lua flags=allow-cross-slot-keys\n"
    + _EPOCH
    + """
local replid = replication_id()
local out = {}
for i = 2, #ARGV, 4 do
  out[#out + 1] = channel_epoch(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[1], replid)
  out[#out + 1] = tonumber(redis.call('GET', ARGV[i + 1]) or '0')
end
return out
"""
)
