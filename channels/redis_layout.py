"""Where a channel lives in Redis: its pub/sub name and its keys, all in one hash slot.

A producer publishes channel ``order:o1`` as ``<prefix>:order:o1``. Its history keys are tagged with
that same string, ``{<prefix>:order:o1}:epoch`` / ``:seq`` / ``:stream`` and idempotency keys
``{<prefix>:order:o1}:idem:<key>``, so on Redis Cluster they hash to the slot of the sharded channel
``<prefix>:order:o1`` itself: the publish script and its ``SPUBLISH`` run on the one shard that owns it.
"""

from __future__ import annotations

__all__ = ["ChannelKeys"]


class ChannelKeys:
    """Names of one deployment's (``prefix``) pub/sub channels and keys."""

    __slots__ = ("_pubsub_prefix", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._pubsub_prefix = f"{prefix}:"

    def pubsub(self, channel: str) -> str:
        """The pub/sub channel producers publish ``channel`` to."""
        return self._pubsub_prefix + channel

    def channel_of(self, pubsub: str) -> str | None:
        """The channel a pub/sub name carries (``None`` when it is not one of this prefix)."""
        return pubsub[len(self._pubsub_prefix) :] if pubsub.startswith(self._pubsub_prefix) else None

    def history(self, channel: str) -> list[str]:
        """The epoch, seq and stream keys of ``channel`` (KEYS of the publish and read scripts)."""
        tag = f"{{{self._pubsub_prefix}{channel}}}"
        return [f"{tag}:epoch", f"{tag}:seq", f"{tag}:stream"]

    def idempotency(self, channel: str, key: str) -> str:
        """The key remembering a publish's idempotency key, in the channel's slot."""
        return f"{{{self._pubsub_prefix}{channel}}}:idem:{key}"
