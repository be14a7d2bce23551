"""Where Redis is: the three ``REDIS_URL`` forms of SPEC "Running it", parsed once into one struct.

- ``redis://[[user]:password@]host:port[/db]``, ``rediss://...``, ``unix://...``: one server;
- ``redis+sentinel://[[user]:password@]host:26379,host:26379/<service>[/<db>]``: the master that
  the sentinels name for ``<service>`` (the password is the data servers'; sentinels are asked
  without one);
- ``redis+cluster://[[user]:password@]host:7000,host:7001``: Redis Cluster, given seed nodes.

``RedisConnector`` (``channels/redis_connector.py``) builds every client from a ``RedisTarget``.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote

import msgspec

__all__ = ["RedisTarget", "parse_redis_url"]

Topology = Literal["single", "sentinel", "cluster"]

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})$")
_SERVICE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class RedisTarget(msgspec.Struct, frozen=True):
    """A parsed ``REDIS_URL``.

    Attributes:
        topology: ``single``, ``sentinel`` or ``cluster``.
        url: The URL as given (a single server is connected to by it).
        nodes: Sentinels (sentinel) or seed nodes (cluster) as ``(host, port)``; empty for one server.
        service: The Sentinel service (master group) name.
        db: The database number (always 0 on a cluster).
        username: ACL user of the data servers, if any.
        password: Password of the data servers, if any.
    """

    topology: Topology
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """Parse one of the three forms.

    Raises:
        ValueError: with what is wrong, for the settings to report against ``REDIS_URL``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("expected redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://")
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(topology="single", url=url)
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise ValueError(f"unknown scheme {scheme}://")
    topology: Topology = "sentinel" if scheme == "redis+sentinel" else "cluster"
    userinfo, at, location = rest.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    hosts, _, path = location.partition("/")
    nodes = tuple(_node(part) for part in hosts.split(","))
    segments = [segment for segment in path.split("/") if segment] if path else []
    if topology == "cluster":
        if segments:
            raise ValueError("redis+cluster:// takes seed nodes only (a cluster has one database)")
        return RedisTarget(topology, url, nodes, username=username, password=password)
    if not segments or not _SERVICE.match(segments[0]):
        raise ValueError("redis+sentinel:// needs the service name: redis+sentinel://host:26379/<service>[/<db>]")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ValueError("after the service only a database number may follow: /<service>/<db>")
    db = int(segments[1]) if len(segments) == 2 else 0
    return RedisTarget(topology, url, nodes, segments[0], db, username, password)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:
        raise ValueError("credentials must be [user]:password@")
    return (unquote(user) or None), unquote(password)


def _node(text: str) -> tuple[str, int]:
    match = _HOST_PORT.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not host:port")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: port out of range")
    return (match["v6"] or match["host"]), port
