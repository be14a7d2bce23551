"""What "Redis cannot be reached right now" means to every Redis module of the relay: one tuple.

Callers turn these into ``BrokerUnavailable`` (retry later); any other ``RedisError`` is a
``BrokerError`` (the command itself failed).
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REDIS_UNAVAILABLE"]

# OSError covers the builtin TimeoutError (its subclass; asyncio.TimeoutError is the same class since
# 3.11): what our own ``asyncio.timeout`` around a call raises, and what redis-py's asyncio client lets
# out of some connect paths instead of its own TimeoutError. Either way the server did not answer.
# Catching it cannot swallow a caller's deadline: an outer ``asyncio.timeout`` cancels the call and
# raises TimeoutError only at its own exit, outside these handlers.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
