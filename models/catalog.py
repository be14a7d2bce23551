"""Who trades: users (from token claims), vendors' stores and their products."""

from __future__ import annotations

from piccolo.columns import BigInt, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

__all__ = ["Product", "Store", "TokenRevocation", "User"]


class User(Table, tablename="users"):
    """A person or service seen in a token; created or refreshed from its claims, never signed up here."""

    id = Varchar(length=64, primary_key=True)
    role = Varchar(length=16)
    name = Text(null=True, default=None)
    email = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Bumped with every change to the user's notification counts: the ETag of /notifications/counts.
    inbox_version = BigInt(default=0)


class TokenRevocation(Table, tablename="token_revocations"):
    """A user's tokens issued before ``revoked_before`` (or without ``iat``) are refused everywhere.

    Written by ``POST /realtime/disconnect``; one row per user, the latest cut-off wins. Not a
    foreign key to ``users``: an operator may revoke a user this server has never seen.
    """

    user_id = Varchar(length=64, primary_key=True)
    revoked_before = Timestamptz()
    updated_at = Timestamptz(default=TimestamptzNow())


class Store(Table, tablename="stores"):
    """A vendor's shop; its owner is the only vendor who sees its orders."""

    id = Varchar(length=40, primary_key=True)
    owner = ForeignKey(references=User, db_column_name="owner_id")
    name = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class Product(Table, tablename="products"):
    """Something a store sells, priced in minor units of the store's currency."""

    id = Varchar(length=40, primary_key=True)
    store = ForeignKey(references=Store, db_column_name="store_id")
    name = Text()
    category = Varchar(length=64)
    price_cents = Integer()
    currency = Varchar(length=3, default="USD")
    created_at = Timestamptz(default=TimestamptzNow())
