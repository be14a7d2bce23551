"""The hub: fan-out, gap-free resume, slow consumers, coalescing, channel bookkeeping."""

from __future__ import annotations

import asyncio

from channels import CLOSE_TOO_SLOW, Broker, Hub, Offset, Publisher, parse_offset
from tests.channels.conftest import WAIT, Recorder, connect


async def settle(hub: Hub, broker: Broker) -> None:
    """Wait until the hub relayed everything published so far (a probe event went through after it)."""
    probe = Recorder()
    conn, close = await connect(hub, probe)
    await hub.subscribe(conn, "user:probe")
    await broker.publish("user:probe", "test.probe", b"{}", history=False)
    await probe.wait_events(1)
    await close()


async def test_event_is_encoded_once_for_all_subscribers(hub: Hub, broker: Broker) -> None:
    """Two subscribers of a channel are handed the very same bytes object."""
    a, b = Recorder(), Recorder()
    conn_a, close_a = await connect(hub, a)
    conn_b, close_b = await connect(hub, b)
    await hub.subscribe(conn_a, "order:o1")
    await hub.subscribe(conn_b, "order:o1")
    await a.wait_for(lambda r: len(r.frames) == 1)
    await b.wait_for(lambda r: len(r.frames) == 1)
    await broker.publish("order:o1", "order.status_changed", b'{"toStatus":"PAID"}')
    await a.wait_for(lambda r: len(r.frames) == 2)
    await b.wait_for(lambda r: len(r.frames) == 2)
    assert a.frames[1] is b.frames[1]
    assert a.events()[0]["data"] == {"toStatus": "PAID"}
    await close_a()
    await close_b()


async def test_subscribe_announces_current_offset(hub: Hub, broker: Broker) -> None:
    """subscribed carries the ref and the channel's current offset, also when it is empty."""
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    empty = await broker.current_offset("order:empty")
    result = await hub.subscribe(conn, "order:empty", ref=7)
    await recorder.wait_for(lambda r: len(r.messages) == 1)
    assert recorder.messages[0] == {
        "op": "subscribed",
        "channel": "order:empty",
        "offset": str(empty),
        "recovered": True,
        "replayed": 0,
        "ref": 7,
    }
    assert result.offset == empty
    await close()


async def test_resume_replays_then_goes_live_without_gap_or_duplicate(hub: Hub, broker: Broker) -> None:
    """50 missed events, 20 published during the replay and 10 after arrive once each, in order."""
    channel = "order:resume"
    start = await broker.current_offset(channel)
    publisher = Publisher(broker)
    for i in range(50):
        await publisher.publish(channel, "tracking.eta", {"i": i})
    recorder = Recorder()
    conn, close = await connect(hub, recorder)

    async def publish_during_replay() -> None:
        for i in range(50, 70):
            await publisher.publish(channel, "tracking.eta", {"i": i})

    result, _ = await asyncio.gather(hub.subscribe(conn, channel, start), publish_during_replay())
    assert result.recovered and result.replayed >= 50
    for i in range(70, 80):
        await publisher.publish(channel, "tracking.eta", {"i": i})
    events = await recorder.wait_events(80)
    await settle(hub, broker)
    events = recorder.events(channel)
    assert [parse_offset(str(e["offset"])).seq for e in events] == list(range(1, 81))
    assert [e["data"] for e in events] == [{"i": i} for i in range(80)]
    assert recorder.messages[0]["op"] == "subscribed"
    await close()


async def test_resubscribe_with_since_replays_from_there(hub: Hub, broker: Broker) -> None:
    """Subscribing again to a channel already joined, with since, replays from that offset."""
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    await hub.subscribe(conn, "user:u1")
    offsets = [await broker.publish("user:u1", "test.event", b'{"i":%d}' % i) for i in range(3)]
    await recorder.wait_events(3)
    result = await hub.subscribe(conn, "user:u1", offsets[0])
    assert result.replayed == 2
    events = await recorder.wait_events(5)
    assert [e["offset"] for e in events] == [str(o) for o in offsets + offsets[1:]]
    await close()


async def test_old_since_is_not_recovered(broker_factory) -> None:
    """A since older than history says recovered false and replays what history holds."""
    broker = await broker_factory(history_size=5)
    hub = Hub(broker)
    await hub.start()
    offsets = [await broker.publish("order:old", "test.event", b'{"i":%d}' % i) for i in range(8)]
    first = offsets[0]
    assert first is not None
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    result = await hub.subscribe(conn, "order:old", Offset(first.epoch, 1))
    assert not result.recovered and result.replayed == 5
    await recorder.wait_events(5)
    assert recorder.messages[0]["recovered"] is False
    await close()
    await hub.stop()


async def test_bare_events_are_relayed_with_null_offset(hub: Hub, broker: Broker) -> None:
    """A bare publish reaches subscribers with "offset": null."""
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    await hub.subscribe(conn, "store:s1")
    await broker.publish("store:s1", "order.created", b'{"orderId":"o"}', history=False)
    (event,) = await recorder.wait_events(1)
    assert event["offset"] is None and event["data"] == {"orderId": "o"}
    await close()


async def test_slow_consumer_is_closed_while_healthy_one_gets_everything(broker: Broker) -> None:
    """A stuck connection overflows and is closed with 4008; a healthy one on the channel misses nothing."""
    hub = Hub(broker, send_queue_bytes=8000)
    await hub.start()
    slow, healthy = Recorder(), Recorder()
    slow.gate = asyncio.Event()  # never set: the slow client never reads
    slow_conn, close_slow = await connect(hub, slow)
    healthy_conn, close_healthy = await connect(hub, healthy)
    await hub.subscribe(slow_conn, "order:busy")
    await hub.subscribe(healthy_conn, "order:busy")
    payload = b'{"text":"%s"}' % (b"x" * 100)
    # Rounds of 30 events (~6.5 KiB) fit a queue even when published without yielding to the writers;
    # the slow writer holds its first batch forever, so its queue overflows on the third round.
    for round_ in range(1, 5):
        for _ in range(30):
            await broker.publish("order:busy", "test.event", payload)
        await healthy.wait_events(30 * round_)
    await slow.wait_for(lambda r: r.closed_with is not None)
    assert slow.closed_with is not None and slow.closed_with[0] == CLOSE_TOO_SLOW
    assert slow_conn.slow and slow_conn.closed
    events = healthy.events()
    assert [parse_offset(str(e["offset"])).seq for e in events] == list(range(1, 121))
    assert hub.metrics.slow_consumer_closes == 1
    await close_slow()
    await close_healthy()
    await hub.stop()


async def test_live_locations_coalesce_but_other_events_do_not(hub: Hub, broker: Broker) -> None:
    """While a connection is behind, a queued live tracking.location is replaced by the newer one."""
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    await hub.subscribe(conn, "order:map")
    await recorder.wait_for(lambda r: len(r.frames) == 1)
    recorder.gate = asyncio.Event()
    recorder.sending.clear()
    await broker.publish("order:map", "tracking.location", b'{"n":1}')
    await asyncio.wait_for(recorder.sending.wait(), WAIT)  # the writer holds location 1, blocked
    await broker.publish("order:map", "tracking.location", b'{"n":2}')
    await broker.publish("order:map", "order.status_changed", b'{"n":3}')
    await broker.publish("order:map", "tracking.location", b'{"n":4}')
    await broker.publish("order:map", "tracking.location", b'{"n":5}')
    await settle(hub, broker)
    recorder.gate.set()
    await recorder.wait_events(3)
    await settle(hub, broker)
    assert [e["data"] for e in recorder.events()] == [{"n": 1}, {"n": 3}, {"n": 5}]
    assert hub.metrics.coalesced == 2
    await close()


async def test_replayed_locations_are_not_coalesced(hub: Hub, broker: Broker) -> None:
    """Every tracking.location replayed by a resume is delivered."""
    start = await broker.current_offset("order:replay")
    for i in range(5):
        await broker.publish("order:replay", "tracking.location", b'{"n":%d}' % i)
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    await hub.subscribe(conn, "order:replay", start)
    events = await recorder.wait_events(5)
    assert [e["data"] for e in events] == [{"n": i} for i in range(5)]
    await close()


async def test_last_subscriber_leaving_releases_the_channel(hub: Hub, broker: Broker) -> None:
    """The channel entry is deleted and the broker unsubscribed after the last local subscriber leaves."""
    a, b = Recorder(), Recorder()
    conn_a, close_a = await connect(hub, a)
    conn_b, close_b = await connect(hub, b)
    await hub.subscribe(conn_a, "order:gone")
    await hub.subscribe(conn_b, "order:gone")
    await hub.unsubscribe(conn_b, "order:gone")
    assert hub.channels["order:gone"] == {conn_a}
    await hub.unsubscribe(conn_a, "order:gone")
    assert "order:gone" not in hub.channels
    assert "order:gone" not in broker.subscriptions
    await hub.subscribe(conn_b, "order:gone2")
    await close_b()  # leaving the connect() block leaves every channel
    assert "order:gone2" not in hub.channels
    assert "order:gone2" not in broker.subscriptions
    await close_a()


async def test_epoch_change_under_live_subscription_is_announced(hub: Hub, broker: Broker) -> None:
    """When history is lost under a live subscription, subscribed with recovered false precedes the new events."""
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    await hub.subscribe(conn, "order:reset")
    old = await broker.publish("order:reset", "test.event", b'{"i":1}')
    await recorder.wait_events(1)
    if hasattr(broker, "forget"):
        broker.forget("order:reset")
    else:
        await broker._client.delete(*broker.keys.history("order:reset"))  # type: ignore[attr-defined]
    new = await broker.publish("order:reset", "test.event", b'{"i":2}')
    await recorder.wait_events(2)
    assert old is not None and new is not None and new.epoch != old.epoch
    reset = recorder.messages[-2]
    assert reset["op"] == "subscribed" and reset["recovered"] is False
    assert reset["offset"] == f"{new.epoch}:0"
    assert recorder.messages[-1]["offset"] == str(new)
    await close()


async def test_replay_larger_than_the_send_queue_is_queued_in_parts(broker: Broker) -> None:
    """A resume whose replay exceeds the send queue arrives whole and in order, without a 4008."""
    hub = Hub(broker, send_queue_bytes=4000)
    await hub.start()
    start = await broker.current_offset("order:long")
    payload = b'{"text":"%s"}' % (b"x" * 200)
    for _ in range(60):  # ~17 KiB replayed through a 4,000-byte queue
        await broker.publish("order:long", "test.event", payload)
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    result = await hub.subscribe(conn, "order:long", start)
    assert result.recovered and result.replayed == 60
    await broker.publish("order:long", "test.event", payload)
    events = await recorder.wait_events(61)
    assert [parse_offset(str(e["offset"])).seq for e in events] == list(range(1, 62))
    assert recorder.closed_with is None and not conn.slow
    await close()
    await hub.stop()


async def test_live_events_held_behind_an_unread_replay_are_bounded_by_the_send_queue(broker: Broker) -> None:
    """While a replay waits for a client that does not read, live events held for it past the queue close it 4008."""
    hub = Hub(broker, send_queue_bytes=4000)
    await hub.start()
    start = await broker.current_offset("order:held")
    payload = b'{"text":"%s"}' % (b"x" * 200)
    for _ in range(60):
        await broker.publish("order:held", "test.event", payload)
    stuck, watcher = Recorder(), Recorder()
    stuck.gate = asyncio.Event()  # never set: the first frame is never taken
    stuck_conn, close_stuck = await connect(hub, stuck)
    watcher_conn, close_watcher = await connect(hub, watcher)
    await hub.subscribe(watcher_conn, "order:held")
    subscribing = asyncio.create_task(hub.subscribe(stuck_conn, "order:held", start))
    await asyncio.wait_for(stuck.sending.wait(), WAIT)  # the first part of the replay is being written
    for number in range(1, 30):  # ~7 KiB of live events, held behind the replay
        await broker.publish("order:held", "test.event", payload)
        await watcher.wait_events(number)
    await stuck.wait_for(lambda r: r.closed_with is not None)
    assert stuck.closed_with is not None and stuck.closed_with[0] == CLOSE_TOO_SLOW
    await asyncio.wait_for(subscribing, WAIT)  # the replay stops waiting once the connection is closed
    await close_stuck()
    await close_watcher()
    await hub.stop()
