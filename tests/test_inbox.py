"""The inbox on both engines (SPEC "The inbox"): seen, read, unread, archive, bulk, counts with ETag, filters."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from litestar import Litestar

from app.runtime import Runtime
from models import Notification
from tests.test_notifications import _create, _sign_in

Headers = Callable[..., dict[str, str]]


async def _ids(client: httpx.AsyncClient, auth: Headers, user_id: str, count: int) -> list[str]:
    """``count`` new notifications of ``user_id``, oldest first."""
    return [(await _create(client, auth, user_id, title=f"n{number}")).json()["id"] for number in range(count)]


async def _listed(client: httpx.AsyncClient, auth: Headers, user_id: str, **params: str) -> list[str]:
    page = (await client.get("/notifications", params=params, headers=auth(user_id))).json()
    return [item["id"] for item in page["items"]]


async def _counts(client: httpx.AsyncClient, auth: Headers, user_id: str) -> dict[str, int]:
    response = await client.get("/notifications/counts", headers=auth(user_id))
    assert response.status_code == 200
    counts: dict[str, int] = response.json()
    return counts


async def test_one_notification_through_every_state(client: httpx.AsyncClient, auth: Headers) -> None:
    """read sets isRead, readAt and isSeen; unread clears read only; archive/unarchive; each idempotent."""
    await _sign_in(client, auth, "u_states")
    (first, other) = await _ids(client, auth, "u_states", 2)
    fresh = (await client.get("/notifications", headers=auth("u_states"))).json()["items"][0]
    assert fresh["isSeen"] is False and fresh["seenAt"] is None and fresh["readAt"] is None
    assert fresh["archivedAt"] is None

    async def act(action: str) -> dict[str, object]:
        responses = [await client.patch(f"/notifications/{first}/{action}", headers=auth("u_states")) for _ in range(2)]
        assert [response.status_code for response in responses] == [200, 200]
        assert responses[0].json() == responses[1].json()  # the second call changed nothing, not even updatedAt
        body: dict[str, object] = responses[0].json()
        return body

    read = await act("read")
    assert read["isRead"] is True and read["isSeen"] is True and read["readAt"] == read["seenAt"]
    assert str(read["readAt"]).endswith("Z")
    unread = await act("unread")
    assert unread["isRead"] is False and unread["readAt"] is None
    assert unread["isSeen"] is True and unread["seenAt"] == read["seenAt"]
    archived = await act("archive")
    assert str(archived["archivedAt"]).endswith("Z")
    assert await _listed(client, auth, "u_states") == [other]
    assert await _listed(client, auth, "u_states", archived="true") == [first]
    assert await _listed(client, auth, "u_states", archived="false") == [other]
    restored = await act("unarchive")
    assert restored["archivedAt"] is None
    assert await _listed(client, auth, "u_states") == [other, first]
    row = await Notification.select().where(Notification.id == first).first()
    assert row is not None and row["is_read"] is False and row["read_at"] is None


async def test_another_users_or_unknown_id_is_404_and_untouched(client: httpx.AsyncClient, auth: Headers) -> None:
    """Every per-notification action answers 404 for another user's or an unknown id, and changes nothing."""
    await _sign_in(client, auth, "u_mine")
    await _sign_in(client, auth, "u_theirs")
    (theirs,) = await _ids(client, auth, "u_theirs", 1)
    for action in ("read", "unread", "archive", "unarchive"):
        for target in (theirs, "ntf_nope"):
            response = await client.patch(f"/notifications/{target}/{action}", headers=auth("u_mine"))
            assert response.status_code == 404, (action, target)
            assert response.headers["content-type"].startswith("application/problem+json")
    row = await Notification.select().where(Notification.id == theirs).first()
    assert row is not None and (row["is_read"], row["seen_at"], row["read_at"], row["archived_at"]) == (
        False,
        None,
        None,
        None,
    )


async def test_seen_all_archive_all_and_the_filters(client: httpx.AsyncClient, auth: Headers) -> None:
    """seen-all and archive-all answer how many changed (0 when repeated); ?read=true archives only read ones."""
    await _sign_in(client, auth, "u_all")
    ids = await _ids(client, auth, "u_all", 5)
    for notification_id in ids[:2]:
        await client.patch(f"/notifications/{notification_id}/read", headers=auth("u_all"))
    assert set(await _listed(client, auth, "u_all", seen="true")) == set(ids[:2])
    assert set(await _listed(client, auth, "u_all", seen="false")) == set(ids[2:])
    assert (await client.patch("/notifications/seen-all", headers=auth("u_all"))).json() == {"updated": 3}
    assert (await client.patch("/notifications/seen-all", headers=auth("u_all"))).json() == {"updated": 0}
    assert await _listed(client, auth, "u_all", seen="false") == []
    assert await _counts(client, auth, "u_all") == {"unseen": 0, "unread": 3, "total": 5}
    only_read = await client.patch("/notifications/archive-all", params={"read": "true"}, headers=auth("u_all"))
    assert only_read.json() == {"updated": 2}
    assert set(await _listed(client, auth, "u_all", archived="true")) == set(ids[:2])
    assert set(await _listed(client, auth, "u_all", unread="true")) == set(ids[2:])
    assert (await client.patch("/notifications/archive-all", headers=auth("u_all"))).json() == {"updated": 3}
    assert (await client.patch("/notifications/archive-all", headers=auth("u_all"))).json() == {"updated": 0}
    assert await _listed(client, auth, "u_all") == []
    assert len(await _listed(client, auth, "u_all", archived="true", unread="true")) == 3
    assert await _counts(client, auth, "u_all") == {"unseen": 0, "unread": 0, "total": 0}
    # unread-count is counts.unread: archived notifications are in no count of the bell.
    assert (await client.get("/notifications/unread-count", headers=auth("u_all"))).json() == {"count": 0}


async def test_bulk_skips_others_ids_and_counts_real_changes(client: httpx.AsyncClient, auth: Headers) -> None:
    """Bulk applies each action to the caller's ids only; repeats, duplicates and others' ids count nothing."""
    await _sign_in(client, auth, "u_bulk")
    await _sign_in(client, auth, "u_bulk_other")
    mine = await _ids(client, auth, "u_bulk", 4)
    (theirs,) = await _ids(client, auth, "u_bulk_other", 1)
    targets = [*mine[:3], mine[0], theirs, "ntf_missing"]

    async def bulk(action: str) -> int:
        body = {"ids": targets, "action": action}
        response = await client.patch("/notifications/bulk", json=body, headers=auth("u_bulk"))
        assert response.status_code == 200, response.text
        updated: int = response.json()["updated"]
        return updated

    assert [await bulk("seen"), await bulk("seen")] == [3, 0]
    assert [await bulk("read"), await bulk("read")] == [3, 0]
    assert await _counts(client, auth, "u_bulk") == {"unseen": 1, "unread": 1, "total": 4}
    assert [await bulk("unread"), await bulk("unread")] == [3, 0]
    assert [await bulk("archive"), await bulk("archive")] == [3, 0]
    assert await _counts(client, auth, "u_bulk") == {"unseen": 1, "unread": 1, "total": 1}
    assert [await bulk("unarchive"), await bulk("unarchive")] == [3, 0]
    assert await _counts(client, auth, "u_bulk") == {"unseen": 1, "unread": 4, "total": 4}
    row = await Notification.select().where(Notification.id == theirs).first()
    assert row is not None and row["seen_at"] is None and row["archived_at"] is None


async def test_bad_bulk_bodies_are_400_naming_the_field(client: httpx.AsyncClient, auth: Headers) -> None:
    """0 or 101 ids, an unknown action, an id not a string, a missing or unknown field: 400 problem naming it."""
    await _sign_in(client, auth, "u_bulk_bad")
    (mine,) = await _ids(client, auth, "u_bulk_bad", 1)
    cases = {
        "ids": [
            {"ids": [], "action": "read"},
            {"ids": [mine] * 101, "action": "read"},
            {"ids": "ntf_1", "action": "read"},
            {"action": "read"},
        ],
        "ids[0]": [{"ids": [3], "action": "read"}],
        "action": [{"ids": [mine], "action": "explode"}, {"ids": [mine]}],
        "colour": [{"ids": [mine], "action": "read", "colour": "red"}],
    }
    for field, bodies in cases.items():
        for body in bodies:
            response = await client.patch("/notifications/bulk", json=body, headers=auth("u_bulk_bad"))
            assert response.status_code == 400, body
            assert response.headers["content-type"].startswith("application/problem+json")
            fields = {error["field"] for error in response.json().get("errors", [])}
            assert any(field in name for name in fields) or field in response.json()["detail"], (body, response.text)
    not_json = await client.patch("/notifications/bulk", content=b"{", headers=auth("u_bulk_bad"))
    assert not_json.status_code == 400
    # An id that names nothing of the caller's is skipped, not an error (SPEC), even an empty one.
    empty = await client.patch("/notifications/bulk", json={"ids": [""], "action": "read"}, headers=auth("u_bulk_bad"))
    assert empty.status_code == 200 and empty.json() == {"updated": 0}
    row = await Notification.select().where(Notification.id == mine).first()
    assert row is not None and row["is_read"] is False


async def test_counts_carry_an_etag_and_answer_304(client: httpx.AsyncClient, auth: Headers) -> None:
    """counts answers 304 to its own ETag until a count changes, then 200 with a new ETag."""
    await _sign_in(client, auth, "u_etag")
    ids = await _ids(client, auth, "u_etag", 2)
    counted = await client.get("/notifications/counts", headers=auth("u_etag"))
    assert counted.json() == {"unseen": 2, "unread": 2, "total": 2}
    etag = counted.headers["etag"]
    assert counted.headers["cache-control"] == "private, no-cache"
    same = await client.get("/notifications/counts", headers={**auth("u_etag"), "If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    await client.patch(f"/notifications/{ids[0]}/archive", headers=auth("u_etag"))
    changed = await client.get("/notifications/counts", headers={**auth("u_etag"), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json() == {"unseen": 1, "unread": 1, "total": 1}
    assert changed.headers["etag"] != etag


async def test_counts_exact_under_concurrent_creates_and_changes(
    client: httpx.AsyncClient, auth: Headers, app: Litestar
) -> None:
    """50 creates racing 50 state changes: counts equal the rows, and the last counts event says the same."""
    runtime: Runtime = app.state.runtime
    await _sign_in(client, auth, "u_race")
    existing = await asyncio.gather(*(_create(client, auth, "u_race") for _ in range(50)))
    ids = [response.json()["id"] for response in existing]
    rng = random.Random(16)
    actions = [rng.choice(["read", "unread", "archive", "unarchive"]) for _ in ids]

    async def change(notification_id: str, action: str) -> None:
        response = await client.patch(f"/notifications/{notification_id}/{action}", headers=auth("u_race"))
        assert response.status_code == 200

    await asyncio.gather(
        *(change(i, a) for i, a in zip(ids, actions, strict=True)),
        *(_create(client, auth, "u_race") for _ in range(50)),
        client.patch("/notifications/seen-all", headers=auth("u_race")),
    )
    rows = await Notification.select().where(Notification.user == "u_race")
    shown = [row for row in rows if row["archived_at"] is None]
    truth = {
        "unseen": sum(1 for row in shown if row["seen_at"] is None),
        "unread": sum(1 for row in shown if not row["is_read"]),
        "total": len(shown),
    }
    assert len(rows) == 100 and truth["total"] == 100 - actions.count("archive")
    assert await _counts(client, auth, "u_race") == truth
    assert all(bool(row["is_read"]) == (row["read_at"] is not None) for row in rows)
    assert all(row["seen_at"] is not None for row in rows if row["is_read"])
    await runtime.outbox.drain()
    history = await runtime.relay.broker.history("user:u_race", None)
    published = [msgspec.json.decode(event.data) for event in history.events if event.type == "notification.counts"]
    assert published and published[-1] == truth


async def test_overlapping_bulk_and_all_changes_never_deadlock(client: httpx.AsyncClient, auth: Headers) -> None:
    """Bulk changes of shuffled overlapping ids racing the *-all actions all succeed (rows locked in one order)."""
    await _sign_in(client, auth, "u_locks")
    ids = await _ids(client, auth, "u_locks", 40)
    rng = random.Random(7)

    async def bulk(action: str) -> httpx.Response:
        targets = rng.sample(ids, 30)
        return await client.patch(
            "/notifications/bulk", json={"ids": targets, "action": action}, headers=auth("u_locks")
        )

    calls = [bulk(rng.choice(["read", "unread", "seen", "archive", "unarchive"])) for _ in range(60)]
    calls += [client.patch(f"/notifications/{path}", headers=auth("u_locks")) for path in ("seen-all", "read-all") * 5]
    calls += [client.patch("/notifications/archive-all", headers=auth("u_locks")) for _ in range(5)]
    responses = await asyncio.gather(*calls)
    assert [response.status_code for response in responses] == [200] * len(calls)


async def test_a_scheduled_notification_counts_once_due(
    client: httpx.AsyncClient, auth: Headers, app: Litestar
) -> None:
    """A future notification is in no count; once delivered, counts include it and notification.counts says so."""
    runtime: Runtime = app.state.runtime
    await _sign_in(client, auth, "u_due")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = (await _create(client, auth, "u_due", scheduledFor=later)).json()
    assert await _counts(client, auth, "u_due") == {"unseen": 0, "unread": 0, "total": 0}
    bulk = {"ids": [scheduled["id"]], "action": "read"}
    assert (await client.patch("/notifications/bulk", json=bulk, headers=auth("u_due"))).json() == {"updated": 0}
    await Notification.update({Notification.scheduled_for: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Notification.id == scheduled["id"]
    )
    assert await runtime.scheduler.deliver_due() >= 1
    assert await _counts(client, auth, "u_due") == {"unseen": 1, "unread": 1, "total": 1}
    await runtime.outbox.drain()
    history = await runtime.relay.broker.history("user:u_due", None)
    counts = [msgspec.json.decode(event.data) for event in history.events if event.type == "notification.counts"]
    assert counts[-1] == {"unseen": 1, "unread": 1, "total": 1}


async def test_the_counts_etag_moves_with_every_change_of_a_count_and_only_then(
    client: httpx.AsyncClient, auth: Headers, app: Litestar
) -> None:
    """The counts ETag (the inbox version) moves on a create, a state change and a due scheduled one; not on no-ops."""
    runtime: Runtime = app.state.runtime
    await _sign_in(client, auth, "u_tag")

    async def current() -> str:
        response = await client.get("/notifications/counts", headers=auth("u_tag"))
        assert response.status_code == 200
        return response.headers["etag"]

    async def still_current(etag: str) -> bool:
        response = await client.get("/notifications/counts", headers={**auth("u_tag"), "If-None-Match": etag})
        return response.status_code == 304

    empty = await current()
    [notification_id] = await _ids(client, auth, "u_tag", 1)
    created = await current()
    assert created != empty and not await still_current(empty)
    await client.patch(f"/notifications/{notification_id}/read", headers=auth("u_tag"))
    read = await current()
    assert read != created
    await client.patch(f"/notifications/{notification_id}/read", headers=auth("u_tag"))  # a repeat changes nothing
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    scheduled = (await _create(client, auth, "u_tag", scheduledFor=later)).json()  # not visible: in no count yet
    assert await still_current(read)
    await Notification.update({Notification.scheduled_for: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Notification.id == scheduled["id"]
    )
    assert await runtime.scheduler.deliver_due() >= 1
    assert not await still_current(read)
    assert await _counts(client, auth, "u_tag") == {"unseen": 1, "unread": 1, "total": 2}
