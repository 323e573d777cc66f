"""Deterministic synthetic customer histories for replay tests and benchmarks."""

from __future__ import annotations

import random
from typing import Any

from schemas.timestamps import MS_PER_DAY, iso
from tests.factories import page_view, profile, purchase, ticket

CATEGORIES = ("tea", "coffee", "cups", "snacks", "books", "skincare", "wine", "toys")
PAGE_TYPES = ("home", "category", "product", "product", "cart", "checkout", "pricing", "support")


def generate_history(
    seed: int, customers: int, start_ms: int, days: int, *, bad_every: int = 0
) -> list[dict[str, Any]]:
    """Events of ``customers`` customers over ``days`` days from ``start_ms``, in no
    particular order. Each customer has a buying rhythm (some stop buying half-way,
    some never buy); some browse daily for weeks and then stop, some fill a cart and
    leave, some open complaints (resolved later) or ask to cancel. ``bad_every`` > 0
    adds an invalid event every that many events."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    end_ms = start_ms + days * MS_PER_DAY
    for n in range(customers):
        cid = f"cust-{n:05d}"
        events += _behaviour(random.Random(f"{seed}-{cid}"), cid, start_ms, days)
        gap_days = rng.choice((7, 20, 45, 80, 120, 200, 10_000))
        stop_ms = end_ms if rng.random() < 0.6 else start_ms + rng.randrange(days) * MS_PER_DAY
        t = start_ms + rng.randrange(0, 60 * MS_PER_DAY)
        k = 0
        if rng.random() < 0.7:
            events.append(profile(cid, iso(t), consent={"email": rng.random() < 0.8}))
        while t < stop_ms:
            amount = rng.choice((800, 1500, 2400, 3900, 6200, 12000))
            cats = tuple(sorted(rng.sample(CATEGORIES, rng.randrange(1, 3))))
            events.append(purchase(cid, iso(t), amount, categories=cats, event_id=f"{cid}-p{k}"))
            for v in range(rng.randrange(0, 4)):
                at = t - rng.randrange(1, 3 * MS_PER_DAY)
                events.append(
                    page_view(cid, iso(at), rng.choice(PAGE_TYPES), event_id=f"{cid}-v{k}-{v}")
                )
            if rng.random() < 0.08:
                events.append(ticket(cid, iso(t + MS_PER_DAY), f"{cid}-t{k}", category="trouble"))
            k += 1
            t += int(gap_days * MS_PER_DAY * rng.uniform(0.5, 1.5))
    if bad_every:
        bad = []
        for i in range(0, len(events), bad_every):
            broken = dict(events[i], event_id=f"bad-{i}")
            broken["occurred_at"] = broken["occurred_at"].replace("Z", "")  # no offset
            bad.append(broken)
        events += bad
    return events


def _behaviour(rng: random.Random, cid: str, start_ms: int, days: int) -> list[dict[str, Any]]:
    """Browsing habits, cart bursts and tickets of one customer (the churn signals)."""
    events: list[dict[str, Any]] = []
    if rng.random() < 0.15:  # a daily browsing habit that stops: an engagement drop
        first = rng.randrange(0, max(1, days - 120))
        for d in range(first, first + rng.randrange(60, 110)):
            at = start_ms + d * MS_PER_DAY + rng.randrange(MS_PER_DAY)
            events.append(page_view(cid, iso(at), "product", event_id=f"{cid}-hab{d}"))
    if rng.random() < 0.12:  # a cart or pricing burst; half of them buy the next day
        t = start_ms + rng.randrange(days) * MS_PER_DAY
        for k in range(rng.randrange(3, 5)):
            at = t + k * rng.randrange(600_000, 3 * 3_600_000)
            page = rng.choice(("cart", "checkout", "pricing"))
            events.append(page_view(cid, iso(at), page, event_id=f"{cid}-hi{k}"))
        if rng.random() < 0.5:
            buy = t + 20 * 3_600_000
            events.append(purchase(cid, iso(buy), 4200, categories=("tea",), event_id=f"{cid}-hb"))
    if rng.random() < 0.06:  # a complaint, resolved a few days later
        t = start_ms + rng.randrange(days) * MS_PER_DAY
        events.append(ticket(cid, iso(t), f"{cid}-c", category="complaint"))
        done = t + rng.randrange(1, 5) * MS_PER_DAY
        events.append(ticket(cid, iso(done), f"{cid}-c", "resolved", category="complaint"))
    if rng.random() < 0.04:  # a cancellation request
        t = start_ms + rng.randrange(days) * MS_PER_DAY
        events.append(ticket(cid, iso(t), f"{cid}-x", category="cancellation"))
    return events
