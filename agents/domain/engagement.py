"""Engagement drops: when a customer's page views fall sharply against their habit. Pure.

At a UTC midnight (the start of day ``d``), the *recent* window is the
``recent_days`` complete days before ``d`` and the *baseline* the
``baseline_weeks`` weeks before those. A drop holds when the baseline averages
at least ``min_baseline_weekly_views`` views a week and the recent weekly rate
is below ``drop_ratio`` times it; an *onset* is a midnight at which a drop
holds and did not the midnight before (one episode lasts as long as the drop).

Onsets are a function of the customer's daily view counts, kept in the state
(``drop_onsets``, UTC days, assuming no views beyond those known) because
finding them scans every day of the window: a page view at day ``u`` changes
only the onsets in ``(u, u + recent_days + 7 * baseline_weeks + 1]``, so each
view recomputes that stretch alone (:func:`refresh_onsets`), and everything
else reads the list. The comparison is done on the raw counts, identically
for the list and for the rule's evaluation.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass

from agents.domain.customer_state import CustomerState
from agents.domain.rulebook import EngagementDropRule


def dropped(recent_views: int, baseline_views: int, rule: EngagementDropRule) -> bool:
    """The drop condition on the views of the two windows."""
    baseline_weekly = baseline_views / rule.baseline_weeks
    if baseline_weekly < rule.min_baseline_weekly_views:
        return False
    return recent_views * 7 / rule.recent_days < rule.drop_ratio * baseline_weekly


@dataclass(frozen=True)
class EngagementWindow:
    """Page views around a check at UTC midnight (the start of day ``check_day``)."""

    recent_views: int
    baseline_views: int
    recent_weekly: float
    baseline_weekly: float

    def dropped(self, rule: EngagementDropRule) -> bool:
        return dropped(self.recent_views, self.baseline_views, rule)


def engagement_window(
    views: dict[int, int], check_day: int, rule: EngagementDropRule
) -> EngagementWindow:
    """Views in the ``recent_days`` complete days before ``check_day`` and in the
    ``baseline_weeks`` weeks before those, as totals and weekly averages (rounded)."""
    recent_first = check_day - rule.recent_days
    base_first = recent_first - 7 * rule.baseline_weeks
    recent = sum(views.get(d, 0) for d in range(recent_first, check_day))
    baseline = sum(views.get(d, 0) for d in range(base_first, recent_first))
    return EngagementWindow(
        recent,
        baseline,
        round(recent * 7 / rule.recent_days, 6),
        round(baseline / rule.baseline_weeks, 6),
    )


def drop_starts(views: dict[int, int], day: int, rule: EngagementDropRule) -> bool:
    """Whether a drop starts at ``day``'s midnight (the definition, day by day)."""
    return engagement_window(views, day, rule).dropped(rule) and not engagement_window(
        views, day - 1, rule
    ).dropped(rule)


def reach(rule: EngagementDropRule) -> int:
    """Days after a view whose onsets that view can change."""
    return rule.recent_days + 7 * rule.baseline_weeks + 1


def engagement_onsets(
    views: dict[int, int], from_day: int, until_day: int, rule: EngagementDropRule
) -> list[int]:
    """UTC days ``d`` with ``from_day <= d < until_day`` at whose midnight a drop starts,
    assuming no views beyond those in ``views``. O(days) with running sums; the same
    decisions as :func:`drop_starts` day by day (a test checks it)."""
    if not views or until_day <= from_day:
        return []
    recent_len, base_len = rule.recent_days, 7 * rule.baseline_weeks
    first_view, last_view = min(views), max(views)
    # No drop before the baseline holds a view, nor once the baseline is empty again.
    start = max(from_day, first_view + recent_len + 1)
    last = min(until_day, last_view + recent_len + base_len + 2)
    if last <= start:
        return []
    # Running sums over the days the windows of start-1 .. last-1 cover.
    first = start - 1 - recent_len - base_len
    span = last - first + 1
    prefix = [0] * (span + 1)
    running = 0
    get = views.get
    for i in range(span):
        running += get(first + i, 0)
        prefix[i + 1] = running
    weeks, floor, ratio = rule.baseline_weeks, rule.min_baseline_weekly_views, rule.drop_ratio
    found = []
    previous = False
    for day in range(start - 1, last):
        # :func:`dropped` inlined, on prefix sums (the same float operations).
        r_lo = day - recent_len - first
        baseline_weekly = (prefix[r_lo] - prefix[r_lo - base_len]) / weeks
        now = (
            baseline_weekly >= floor
            and (prefix[day - first] - prefix[r_lo]) * 7 / recent_len < ratio * baseline_weekly
        )
        if now and not previous and day >= start:
            found.append(day)
        previous = now
    return found


def rule_key(rule: EngagementDropRule) -> int:
    """A fingerprint of the parameters the onsets depend on (a config change recomputes)."""
    text = f"{rule.recent_days}/{rule.baseline_weeks}/{rule.drop_ratio!r}/"
    return zlib.crc32(f"{text}{rule.min_baseline_weekly_views!r}".encode()) + 1


def refresh_onsets(state: CustomerState, rule: EngagementDropRule, days: tuple[int, ...]) -> None:
    """Bring ``state.drop_onsets`` up to date after the view counts of ``days`` changed
    (all of them if the rule's parameters changed since they were computed)."""
    key = rule_key(rule)
    if state.drop_key != key:
        views = {d: v for d, v, _ in state.view_days}
        state.drop_onsets = engagement_onsets(views, -(2**40), 2**40, rule) if views else []
        state.drop_key = key
        return
    onsets = state.drop_onsets
    buckets = state.view_days
    span = reach(rule)
    for day in sorted(set(days)):
        lo, hi = day + 1, day + span + 1
        # The views those onsets can read: from one window before lo to hi.
        near = buckets[bisect.bisect_left(buckets, [lo - span - 1]) :]
        views = {d: v for d, v, _ in near if d < hi}
        fresh = engagement_onsets(views, lo, hi, rule)
        onsets[bisect.bisect_left(onsets, lo) : bisect.bisect_left(onsets, hi)] = fresh
