"""The due-timer index, the per-partition event clock, ticks and timestamps (pure)."""

from __future__ import annotations

import random

from agents.domain.clock import BacklogBarrier, PartitionClock
from agents.domain.timer_index import TimerIndex
from schemas.ticks import TICK_HEADERS, decode_tick, encode_tick, is_tick
from schemas.timestamps import from_ms, iso
from schemas.wake_ups import decode_wake_up, is_legacy_nudge, is_wake_up, wake_up_headers


def test_index_pops_due_customers_in_due_order_per_partition() -> None:
    index = TimerIndex()
    index.schedule(0, "b", 20)
    index.schedule(0, "a", 10)
    index.schedule(1, "c", 5)
    index.schedule(0, "z", 30)
    assert list(index.pop_due(0, 30)) == ["a", "b"]  # strictly before 30
    assert list(index.pop_due(1, 100)) == ["c"]
    assert index.next_due(0) == 30 and len(index) == 1


def test_rescheduling_replaces_the_old_entry_and_none_unschedules() -> None:
    index = TimerIndex()
    index.schedule(0, "a", 10)
    index.schedule(0, "a", 50)  # a purchase moved the customer's next timer
    index.schedule(0, "b", 20)
    index.schedule(0, "b", None)  # b has no timers left
    assert list(index.pop_due(0, 40)) == []
    assert list(index.pop_due(0, 51)) == ["a"]
    assert len(index) == 0


def test_index_matches_a_sorted_reference_under_random_operations() -> None:
    rng = random.Random(3)
    index, reference = TimerIndex(), {}
    for step in range(5000):
        customer = f"c{rng.randrange(300)}"
        if rng.random() < 0.7:
            due = rng.randrange(10_000)
            index.schedule(0, customer, due)
            reference[customer] = due
        else:
            bound = rng.randrange(10_000)
            popped = list(index.pop_due(0, bound))
            expected = sorted((d, c) for c, d in reference.items() if d < bound)
            assert popped == [c for _, c in expected], step
            for c in popped:
                del reference[c]
    assert len(index) == len(reference)


def test_rebuild_replaces_everything() -> None:
    index = TimerIndex()
    index.schedule(0, "old", 1)
    assert index.rebuild([(0, "a", 5), (2, "b", 7), (0, "c", None)]) == 2
    assert list(index.pop_due(0, 100)) == ["a"] and list(index.pop_due(2, 100)) == ["b"]


def test_watermark_is_the_slowest_topic_and_needs_every_topic() -> None:
    clock = PartitionClock()
    topics = ["purchases", "page-views"]
    clock.observe_event("page-views", 500)
    assert clock.watermark(topics) is None  # purchases not heard from yet
    clock.observe_event("purchases", 100)
    assert clock.watermark(topics) == 100
    clock.observe_event("purchases", 50)  # out of order: never moves back
    assert clock.watermark(topics) == 100
    assert clock.observe_tick("purchases", 999)
    assert clock.watermark(topics) == 500
    assert not clock.observe_tick("purchases", 10)


def test_tick_round_trip_and_recognition() -> None:
    value = encode_tick(1_735_689_600_000)
    assert decode_tick(value) == 1_735_689_600_000
    assert is_tick(TICK_HEADERS) and is_tick({"kizuna.clock_tick": b"1"})
    assert not is_tick(None) and not is_tick([("other", b"x")])
    assert decode_tick(b'{"type": "clock_tick"}') is None
    assert decode_tick(b"garbage") is None


def test_a_wake_up_names_its_stalled_partitions_and_is_not_a_tick() -> None:
    headers = wake_up_headers([("acme.purchases", 13), ("acme.app-co-purchases", 0)])
    assert is_wake_up(headers) and not is_tick(headers) and not is_legacy_nudge(headers)
    assert decode_wake_up(headers) == [("acme.purchases", 13), ("acme.app-co-purchases", 0)]
    assert decode_wake_up(dict(headers)) == decode_wake_up(headers)  # as Faust may give them
    assert not is_wake_up(None) and not is_wake_up(TICK_HEADERS)
    assert decode_wake_up(None) == [] and decode_wake_up(TICK_HEADERS) == []
    malformed = [("kizuna.wake_up", b"purchases@x @3 purchases@\xb2 page-views@7 \xff")]
    assert decode_wake_up(malformed) == [("page-views", 7)]
    assert is_legacy_nudge([("kizuna.nudge", b"1")]) and not is_tick([("kizuna.nudge", b"1")])


def test_fast_iso_formatting_agrees_with_datetime() -> None:
    rng = random.Random(11)
    edges = [0, 999, 86_399_999, 86_400_000, 951_782_400_000, 253_402_300_799_999]
    # Day boundaries, a leap day (2000-02-29), the last millisecond of year 9999,
    # and before the fast path's range (1969).
    for ms in [*edges, -1, -86_400_001, *[rng.randrange(0, 2**44) for _ in range(2000)]]:
        assert iso(ms) == from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_backlog_barrier_fires_up_to_the_newest_snapshot_whose_backlog_is_processed() -> None:
    barrier = BacklogBarrier(grace_ms=0)
    # t=1000: purchases end at 10, views at 4; nothing processed yet: nothing may fire.
    assert barrier.observe(1_000, {"p": 10, "v": 4}, {"p": 0, "v": 0}) == -(2**62)
    # t=2000: more arrived (ends 20/4); the first snapshot's records are not all in.
    assert barrier.observe(2_000, {"p": 20, "v": 4}, {"p": 10, "v": 3}) == -(2**62)
    # t=3000: the t=1000 backlog is processed, not the t=2000 one: fire before 1001.
    assert barrier.observe(3_000, {"p": 25, "v": 5}, {"p": 12, "v": 4}) == 1_001
    # t=4000: caught up with everything seen at t=3000 (and so t=2000): before 3001.
    assert barrier.observe(4_000, {"p": 30, "v": 5}, {"p": 25, "v": 5}) == 3_001
    # Caught up with the log end itself: the bound is the snapshot's own time.
    assert barrier.observe(5_000, {"p": 30, "v": 5}, {"p": 30, "v": 5}) == 5_001


def test_backlog_barrier_under_steady_load_trails_by_the_lag_and_never_goes_back() -> None:
    """A topic that always has a backlog (records keep arriving) still lets moments fire:
    the bound trails the clock by the consumer's lag (here 3 s), with a grace."""
    barrier = BacklogBarrier(grace_ms=500)
    bounds = []
    for second in range(1, 30):
        now = second * 1_000
        end = second * 100  # 100 records a second keep arriving
        processed = max(0, end - 300)  # the consumer is 3 s (300 records) behind
        bounds.append(barrier.observe(now, {"p": end}, {"p": processed}))
    assert bounds == sorted(bounds)
    assert bounds[-1] == 26_000 - 500 + 1  # the t=26 s snapshot (end 2600) is processed


def test_backlog_barrier_keeps_a_bounded_number_of_snapshots() -> None:
    barrier = BacklogBarrier(grace_ms=0, max_snapshots=3)
    for t in range(10):
        barrier.observe(t, {"p": t + 100}, {"p": 0})
    assert len(barrier._snapshots) == 3
    assert barrier.observe(10, {"p": 200}, {"p": 200}) == 11
