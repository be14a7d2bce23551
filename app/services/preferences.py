"""Per-user notification preferences (SPEC "Preferences, per user"): which media, per type, reach a user.

One row per user in ``notification_preferences`` holding the JSON of :class:`DeliveryPreferences`; no row
means everything on. The rule, :meth:`DeliveryPreferences.allows`, is in one place: a type's own setting
beats the medium's, and ``URGENT`` notifications always reach ``IN_APP``. Deliveries read it when
they send (``deliveries.py``); creation reads it for ``IN_APP`` only, since the row is written then
(``notifications.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from app.platform.database import Database
from app.platform.timefmt import utc_now
from models.enums import DeliveryMedium, NotificationPriority, NotificationType
from models.notifications import NotificationPreferences

__all__ = [
    "DeliveryPreferences",
    "DeliveryPreferencesChange",
    "MediumOverrides",
    "MediumSwitches",
    "PreferencesStore",
    "TypeOverrides",
    "preferences_of",
]


class MediumSwitches(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Each delivery medium on or off (SPEC's ``channels``); every one on unless said otherwise."""

    IN_APP: bool = True
    EMAIL: bool = True
    SMS: bool = True
    PUSH: bool = True


class MediumOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Some media on or off: a type's own settings, or the channels a PATCH changes; absent (or null) ones are not."""

    IN_APP: bool | None = None
    EMAIL: bool | None = None
    SMS: bool | None = None
    PUSH: bool | None = None


class TypeOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The types with settings of their own (one field per ``NotificationType``, so an unknown one is named)."""

    ORDER_CREATED: MediumOverrides | None = None
    ORDER_STATUS_UPDATED: MediumOverrides | None = None
    ORDER_CANCELLED: MediumOverrides | None = None
    ORDER_DELIVERED: MediumOverrides | None = None
    PAYMENT_SUCCEEDED: MediumOverrides | None = None
    PAYMENT_FAILED: MediumOverrides | None = None
    PAYMENT_REFUNDED: MediumOverrides | None = None
    PAYMENT_PROCESSING: MediumOverrides | None = None
    PAYOUT_PROCESSED: MediumOverrides | None = None
    PAYOUT_FAILED: MediumOverrides | None = None
    ACCOUNT_UPDATED: MediumOverrides | None = None


def _setting(switches: MediumSwitches | MediumOverrides | None, medium: DeliveryMedium) -> bool | None:
    return None if switches is None else getattr(switches, medium.value)


def _overlaid(under: MediumOverrides | None, over: MediumOverrides) -> MediumOverrides:
    """``over``'s settings laid on ``under``'s, medium by medium."""
    return MediumOverrides(
        **{
            medium.value: own if (own := _setting(over, medium)) is not None else _setting(under, medium)
            for medium in DeliveryMedium
        }
    )


class DeliveryPreferences(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``{"channels": {medium: on}, "types": {type: {medium: on}}}``: the body of PUT and every answer.

    A type lists only the media it overrides; an unknown type or medium is a 400 naming it
    (``types.NOPE``, ``types.ORDER_CREATED.FAX``, ``channels.FAX``).
    """

    channels: MediumSwitches = msgspec.field(default_factory=MediumSwitches)
    types: TypeOverrides = msgspec.field(default_factory=TypeOverrides)

    def allows(self, type: NotificationType, medium: DeliveryMedium, priority: NotificationPriority) -> bool:
        """Whether a notification of ``type`` and ``priority`` may reach the user on ``medium``."""
        if medium is DeliveryMedium.IN_APP and priority is NotificationPriority.URGENT:
            return True
        own = _setting(getattr(self.types, type.value), medium)
        return bool(_setting(self.channels, medium)) if own is None else own

    def merged(self, change: DeliveryPreferencesChange) -> DeliveryPreferences:
        """These preferences with ``change`` laid over them: media replaced one by one, types merged per medium."""
        changed = {
            medium.value: on for medium in DeliveryMedium if (on := _setting(change.channels, medium)) is not None
        }
        types = {
            type.value: _overlaid(getattr(self.types, type.value), over)
            for type in NotificationType
            if (over := getattr(change.types, type.value)) is not None
        }
        return DeliveryPreferences(
            channels=msgspec.structs.replace(self.channels, **changed),
            types=msgspec.structs.replace(self.types, **types),
        )


class DeliveryPreferencesChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of PATCH: only what changes; ``types`` merges into the stored types medium by medium."""

    channels: MediumOverrides = msgspec.field(default_factory=MediumOverrides)
    types: TypeOverrides = msgspec.field(default_factory=TypeOverrides)


_DEFAULT = DeliveryPreferences()
_decoder = msgspec.json.Decoder(DeliveryPreferences)


async def preferences_of(user_ids: Iterable[str]) -> dict[str, DeliveryPreferences]:
    """The preferences of each of ``user_ids`` (the defaults for a user without a row); usable in a transaction."""
    wanted = list(dict.fromkeys(user_ids))
    found: dict[str, DeliveryPreferences] = {}
    if wanted:
        rows = await NotificationPreferences.select().where(NotificationPreferences.user_id.is_in(wanted))
        found = {row["user_id"]: _decoder.decode(row["preferences"]) for row in rows}
    return {user_id: found.get(user_id, _DEFAULT) for user_id in wanted}


class PreferencesStore:
    """Reads and writes one user's preferences (``GET``/``PUT``/``PATCH /notifications/preferences``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, user_id: str) -> DeliveryPreferences:
        """The user's preferences; everything on until changed."""
        return (await preferences_of([user_id]))[user_id]

    async def replace(self, user_id: str, preferences: DeliveryPreferences) -> DeliveryPreferences:
        """PUT: store ``preferences`` as they are (omitted media on, omitted types without overrides)."""
        async with self.database.write():
            await self._store(user_id, preferences, utc_now())
        return preferences

    async def change(self, user_id: str, change: DeliveryPreferencesChange) -> DeliveryPreferences:
        """PATCH: merge ``change`` into the stored preferences in one transaction; answers the result.

        On PostgreSQL the row is created first if missing and then locked (``FOR UPDATE``), so two
        concurrent PATCHes apply one after the other and neither loses the other's change; SQLite's
        IMMEDIATE write transactions already run one at a time.
        """
        now = utc_now()
        async with self.database.write():
            if not self.database.is_sqlite:
                await NotificationPreferences.raw(
                    "INSERT INTO notification_preferences (user_id, preferences, updated_at) VALUES ({}, {}, {}) "
                    "ON CONFLICT (user_id) DO NOTHING",
                    user_id,
                    msgspec.json.encode(_DEFAULT).decode(),
                    now,
                )
                await NotificationPreferences.raw(
                    "SELECT user_id FROM notification_preferences WHERE user_id = {} FOR UPDATE", user_id
                )
            merged = (await preferences_of([user_id]))[user_id].merged(change)
            await self._store(user_id, merged, now)
        return merged

    @staticmethod
    async def _store(user_id: str, preferences: DeliveryPreferences, now: datetime) -> None:
        await NotificationPreferences.raw(
            "INSERT INTO notification_preferences (user_id, preferences, updated_at) VALUES ({}, {}, {}) "
            "ON CONFLICT (user_id) DO UPDATE SET preferences = excluded.preferences, updated_at = excluded.updated_at",
            user_id,
            msgspec.json.encode(preferences).decode(),
            now,
        )
