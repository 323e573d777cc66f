"""The trigger catalogue rule by rule, on hand-written histories (offline, no Kafka).

Each rule runs alone (``Rulebook.only``) so a test sees exactly its triggers:
it fires when it should, stays quiet at the boundary of each threshold, fires
once per episode and respects its cooldown.
"""

from __future__ import annotations

import random

from agents.domain.customer_state import CustomerState
from agents.domain.engagement import drop_starts, engagement_onsets
from agents.domain.rulebook import Rulebook
from tests.factories import page_view, purchase, ticket
from tests.rule_harness import at, backtest, fired

# --- churn_support_trouble ---------------------------------------------------

TROUBLE = Rulebook.only("churn_support_trouble")


def test_support_trouble_fires_on_the_second_trouble_ticket_within_30_days() -> None:
    events = [
        ticket("c1", at(0), "t1", category="trouble"),
        ticket("c1", at(29, 23), "t2", category="complaint"),
    ]
    triggers = backtest(events, 100, TROUBLE)
    assert fired(triggers) == [("churn_support_trouble", at(29, 23))]
    assert triggers[0].facts["tickets_in_window"] == 2
    assert triggers[0].facts["ticket_ids"] == ["t1", "t2"]


def test_support_trouble_quiet_when_tickets_are_exactly_30_days_apart_or_not_trouble() -> None:
    apart = [ticket("c1", at(0), "t1"), ticket("c1", at(30), "t2")]
    assert backtest(apart, 100, TROUBLE) == []
    questions = [ticket("c1", at(0), "t1"), ticket("c1", at(1), "t2", category="question")]
    assert backtest(questions, 100, TROUBLE) == []


def test_support_trouble_counts_the_category_a_ticket_was_opened_with() -> None:
    events = [
        ticket("c1", at(0), "t1"),
        ticket("c1", at(1), "t2", category="question"),
        ticket("c1", at(2), "t2", status="updated", category="complaint"),
    ]
    assert backtest(events, 100, TROUBLE) == []


def test_support_trouble_fires_once_then_waits_out_its_cooldown() -> None:
    events = [ticket("c1", at(d), f"t{d}") for d in (0, 5, 10, 20, 29)]
    events += [ticket("c1", at(d), f"t{d}") for d in (36, 40)]
    triggers = backtest(events, 100, TROUBLE)
    # day 5 fires; 10, 20, 29 are within the 30-day cooldown; 36 is past it (2 in window).
    assert fired(triggers) == [("churn_support_trouble", at(5)), ("churn_support_trouble", at(36))]


def test_support_trouble_moves_a_buyer_to_at_risk() -> None:
    states: dict[str, CustomerState] = {}
    events = [purchase("c1", at(0), 3000), ticket("c1", at(3), "t1"), ticket("c1", at(4), "t2")]
    backtest(events, 10, TROUBLE, states=states)
    assert states["c1"].stage == "at_risk"
    assert states["c1"].stage_history[-1] == [
        states["c1"].stage_history[-1][0],
        "at_risk",
        "churn signal: churn_support_trouble",
    ]


# --- churn_cancellation_request ----------------------------------------------

CANCEL = Rulebook.only("churn_cancellation_request")


def test_cancellation_request_fires_when_the_ticket_opens_and_not_on_its_updates() -> None:
    events = [
        ticket("c1", at(1), "t1", category="cancellation"),
        ticket("c1", at(2), "t1", status="updated", category="cancellation"),
        ticket("c1", at(3), "t1", status="closed", category="cancellation"),
    ]
    triggers = backtest(events, 30, CANCEL)
    assert fired(triggers) == [("churn_cancellation_request", at(1))]
    assert triggers[0].facts["ticket_id"] == "t1"


def test_cancellation_request_respects_its_7_day_cooldown() -> None:
    events = [ticket("c1", at(d), f"t{d}", category="cancellation") for d in (0, 6.9, 7)]
    triggers = backtest(events, 30, CANCEL)
    assert fired(triggers) == [
        ("churn_cancellation_request", at(0)),
        ("churn_cancellation_request", at(7)),
    ]


def test_other_ticket_categories_are_not_cancellations() -> None:
    assert backtest([ticket("c1", at(0), "t1", category="other")], 30, CANCEL) == []


# --- churn_engagement_drop ---------------------------------------------------

DROP = Rulebook.only("churn_engagement_drop")


def daily_views(customer: str, first_day: int, last_day: int, per_day: int = 1) -> list[dict]:
    return [
        page_view(customer, at(d, h), event_id=f"v-{customer}-{d}-{h}")
        for d in range(first_day, last_day + 1)
        for h in range(per_day)
    ]


def test_engagement_drop_fires_at_the_first_midnight_below_half_the_baseline() -> None:
    # One view a day on days 0..55, then nothing. At midnight of day 63 the last 14 days
    # hold 7 views (3.5/week) against a 6.125/week baseline: not yet below half (3.06).
    # At day 64: 6 views (3.0/week) against 6.25/week: below half (3.125).
    triggers = backtest(daily_views("c1", 0, 55), 200, DROP)
    assert fired(triggers) == [("churn_engagement_drop", at(64))]
    facts = triggers[0].facts
    assert facts["recent_views"] == 6 and facts["baseline_views"] == 50
    assert facts["recent_weekly_views"] == 3.0 and facts["baseline_weekly_views"] == 6.25
    assert facts["drop"] == 0.52


def test_engagement_drop_quiet_for_steady_visitors_and_thin_baselines() -> None:
    steady = daily_views("c1", 0, 150)
    assert backtest(steady, 150, DROP) == []
    # 2 views a week (below the 3/week minimum baseline), then silence.
    thin = [page_view("c2", at(d)) for d in range(0, 56, 3)]
    assert backtest(thin, 200, DROP) == []


def test_engagement_drop_is_postponed_by_a_new_visit() -> None:
    events = daily_views("c1", 0, 55) + daily_views("c1", 62, 63, per_day=3)
    triggers = backtest(events, 200, DROP)
    assert len(triggers) == 1 and triggers[0].due_at > at(64)


def test_engagement_drop_fires_once_while_the_silence_lasts() -> None:
    # The condition holds from day 64 until the baseline empties; one trigger only.
    triggers = backtest(daily_views("c1", 0, 55), 400, DROP)
    assert len(triggers) == 1


# --- post_purchase_follow_up -------------------------------------------------

FOLLOW_UP = Rulebook.only("post_purchase_follow_up")


def test_follow_up_three_days_after_each_purchase() -> None:
    triggers = backtest([purchase("c1", at(0), 1200, order_id="o1")], 30, FOLLOW_UP)
    assert fired(triggers) == [("post_purchase_follow_up", at(3))]
    assert triggers[0].facts["order_id"] == "o1"
    assert triggers[0].facts["amount"] == 1200.0


def test_follow_up_is_moot_after_a_newer_purchase_even_on_the_boundary() -> None:
    events = [purchase("c1", at(0), 1000), purchase("c1", at(3), 1000)]
    assert fired(backtest(events, 30, FOLLOW_UP)) == [("post_purchase_follow_up", at(6))]


def test_follow_up_skipped_while_a_complaint_is_open_and_sent_once_it_is_resolved() -> None:
    open_complaint = [purchase("c1", at(0)), ticket("c1", at(1), "t1", category="complaint")]
    assert backtest(open_complaint, 30, FOLLOW_UP) == []
    resolved = [*open_complaint, ticket("c1", at(2), "t1", "resolved", category="complaint")]
    assert fired(backtest(resolved, 30, FOLLOW_UP)) == [("post_purchase_follow_up", at(3))]
    resolved_late = [*open_complaint, ticket("c1", at(4), "t1", "resolved", category="complaint")]
    assert backtest(resolved_late, 30, FOLLOW_UP) == []  # still open on day 3


def test_follow_up_cooldown_spaces_out_frequent_buyers() -> None:
    rules = Rulebook.only("post_purchase_follow_up", post_purchase_follow_up={"cooldown_days": 10})
    events = [purchase("c1", at(d)) for d in (0, 5, 12)]  # each follow-up is 3 days later
    triggers = backtest(events, 40, rules)
    # day 3 fires; day 8 is not moot (no purchase 5..8) but within 10 days; day 15 fires.
    assert fired(triggers) == [
        ("post_purchase_follow_up", at(3)),
        ("post_purchase_follow_up", at(15)),
    ]


# --- second_purchase_nudge ---------------------------------------------------

NUDGE = Rulebook.only("second_purchase_nudge")


def test_second_purchase_nudge_30_days_after_a_single_purchase() -> None:
    triggers = backtest([purchase("c1", at(0), 900)], 100, NUDGE)
    assert fired(triggers) == [("second_purchase_nudge", at(30))]


def test_second_purchase_nudge_quiet_when_the_second_purchase_comes_by_day_30() -> None:
    on_time = [purchase("c1", at(0)), purchase("c1", at(29))]
    boundary = [purchase("c2", at(0)), purchase("c2", at(30))]
    assert backtest(on_time + boundary, 200, NUDGE) == []


def test_second_purchase_nudge_only_for_the_first_purchase() -> None:
    events = [purchase("c1", at(0)), purchase("c1", at(40)), purchase("c1", at(200))]
    assert fired(backtest(events, 400, NUDGE)) == [("second_purchase_nudge", at(30))]


# --- loyal_promotion ---------------------------------------------------------

LOYAL = Rulebook.only("loyal_promotion")


def test_loyal_promotion_on_the_third_purchase_within_365_days_and_only_then() -> None:
    states: dict[str, CustomerState] = {}
    events = [purchase("c1", at(d)) for d in (0, 100, 200, 250)]
    triggers = backtest(events, 400, LOYAL, states=states)
    assert fired(triggers) == [("loyal_promotion", at(200))]
    assert triggers[0].facts["purchases_in_window"] == 3
    stages = [s for _, s, _ in states["c1"].stage_history]
    assert stages == ["new", "repeat", "loyal"]  # no prospect: the first event is a purchase


def test_loyal_promotion_window_boundary_excludes_a_purchase_365_days_earlier() -> None:
    events = [purchase("c1", at(d)) for d in (0, 100, 365)]
    assert backtest(events, 400, LOYAL) == []


def test_loyal_promotion_again_after_falling_out_of_loyalty() -> None:
    events = [purchase("c1", at(d)) for d in (0, 10, 20, 170, 400, 410, 420)]
    # Day 400: only day 170 is within 365 days (2 purchases): no longer loyal.
    # Day 410: 170, 400 and 410 are: loyal again, a new promotion.
    assert fired(backtest(events, 500, LOYAL)) == [
        ("loyal_promotion", at(20)),
        ("loyal_promotion", at(410)),
    ]


# --- loyal_at_risk -------------------------------------------------------------

LOYAL_AT_RISK = Rulebook.only("loyal_at_risk")


def test_loyal_at_risk_after_twice_the_median_gap() -> None:
    states: dict[str, CustomerState] = {}
    events = [purchase("c1", at(d), 2000) for d in (0, 10, 20)]  # median gap 10 days
    triggers = backtest(events, 100, LOYAL_AT_RISK, states=states)
    assert fired(triggers) == [("loyal_at_risk", at(40))]
    assert triggers[0].facts["median_gap_days"] == 10.0
    assert states["c1"].stage_history[-1][1:] == ["at_risk", "churn signal: loyal_at_risk"]


def test_loyal_at_risk_quiet_when_they_buy_on_the_boundary_or_are_not_loyal() -> None:
    boundary = [purchase("c1", at(d)) for d in (0, 10, 20, 40)]
    # The day-40 purchase cancels the day-20 episode (due on day 40). Its own episode
    # is due on day 60 (gaps 10, 10, 20: median 10).
    assert fired(backtest(boundary, 100, LOYAL_AT_RISK)) == [("loyal_at_risk", at(60))]
    two = [purchase("c2", at(d)) for d in (0, 10)]
    assert backtest(two, 200, LOYAL_AT_RISK) == []


def test_loyal_at_risk_waits_at_least_min_gap_days() -> None:
    events = [purchase("c1", at(0, h)) for h in (0, 1, 2)]  # hourly buying
    assert fired(backtest(events, 100, LOYAL_AT_RISK)) == [("loyal_at_risk", at(7, 2))]


# --- high_intent_no_purchase -------------------------------------------------

INTENT = Rulebook.only("high_intent_no_purchase")


def intent_views(customer: str, hours: list[float], page: str = "cart") -> list[dict]:
    return [page_view(customer, at(1, h), page, event_id=f"hv-{customer}-{h}") for h in hours]


def test_high_intent_fires_24_hours_after_the_third_view_without_a_purchase() -> None:
    triggers = backtest(intent_views("c1", [0, 5, 10]), 30, INTENT)
    assert fired(triggers) == [("high_intent_no_purchase", at(1, 34))]
    assert triggers[0].facts["high_intent_views"] == 3


def test_high_intent_quiet_for_views_spread_over_24_hours_or_ordinary_pages() -> None:
    assert backtest(intent_views("c1", [0, 12, 24]), 30, INTENT) == []
    assert backtest(intent_views("c2", [0, 1, 2], page="product"), 30, INTENT) == []


def test_high_intent_quiet_when_they_buy_within_24_hours() -> None:
    events = [*intent_views("c1", [0, 5, 10]), purchase("c1", at(1, 34))]
    assert backtest(events, 30, INTENT) == []


def test_high_intent_fires_once_for_a_long_browsing_streak() -> None:
    triggers = backtest(intent_views("c1", [0, 1, 2, 3, 4, 5]), 30, INTENT)
    assert fired(triggers) == [("high_intent_no_purchase", at(1, 26))]


# --- cross_sell ----------------------------------------------------------------

CROSS = Rulebook.only("cross_sell")


def test_cross_sell_recommends_what_other_buyers_of_the_category_bought() -> None:
    events = [
        purchase("a", at(0), categories=("tea", "cups")),
        purchase("b", at(1), categories=("tea",)),
        purchase("b", at(2), categories=("cups", "snacks")),
        purchase("c", at(3), categories=("tea", "snacks")),
        purchase("d", at(3), categories=("wine",)),
        purchase("x", at(10), categories=("tea",)),
    ]
    triggers = [t for t in backtest(events, 30, CROSS) if t.customer_id == "x"]
    assert fired(triggers) == [("cross_sell", at(17))]
    assert triggers[0].facts["recommendations"] == [
        {"category": "cups", "co_purchasers": 2},
        {"category": "snacks", "co_purchasers": 2},
    ]


def test_cross_sell_leaves_out_owned_categories_thin_evidence_and_later_purchases() -> None:
    events = [
        purchase("a", at(0), categories=("tea", "cups")),
        purchase("b", at(0), categories=("tea", "cups")),
        purchase("c", at(0), categories=("tea", "snacks")),  # one co-purchaser: below 2
        purchase("x", at(9), categories=("cups",)),  # its own cross-sell: moot (day 10)
        purchase("x", at(10), categories=("tea",)),
        # stamped after x's due time (day 17): must not count
        purchase("d", at(18), categories=("tea", "snacks")),
    ]
    assert [t for t in backtest(events, 30, CROSS) if t.customer_id == "x"] == []


def test_cross_sell_is_moot_after_a_newer_purchase() -> None:
    events = [
        purchase("a", at(0), categories=("tea", "cups")),
        purchase("b", at(0), categories=("tea", "cups")),
        purchase("x", at(10), categories=("tea",)),
        purchase("x", at(12), categories=("wine",)),
    ]
    assert [t for t in backtest(events, 30, CROSS) if t.customer_id == "x"] == []


# --- reactivated ---------------------------------------------------------------

REACTIVATED = Rulebook.only("reactivated")


def test_reactivated_when_a_lapsed_customer_buys_again() -> None:
    states: dict[str, CustomerState] = {}
    events = [purchase("c1", at(0), 5000), purchase("c1", at(180), 2000)]
    triggers = backtest(events, 200, REACTIVATED, states=states)
    assert fired(triggers) == [("reactivated", at(180))]
    assert triggers[0].facts["days_since_previous_purchase"] == 180
    assert states["c1"].stage == "reactivated" and states["c1"].reactivations == 1


def test_reactivated_quiet_one_day_short_of_lapsing() -> None:
    events = [purchase("c1", at(0)), purchase("c1", at(179, 23))]
    assert backtest(events, 400, REACTIVATED) == []


def test_the_fast_drop_search_agrees_with_the_rule_evaluated_day_by_day() -> None:
    rule = DROP.rules["churn_engagement_drop"]
    rng = random.Random(5)
    for _ in range(200):
        views = {d: rng.choice((0, 1, 1, 2, 5)) for d in range(rng.randrange(0, 30), 90)}
        views = {d: v for d, v in views.items() if v and rng.random() < 0.9}
        start = rng.randrange(0, 120)
        brute = [d for d in range(start, 250) if drop_starts(views, d, rule)]
        assert engagement_onsets(views, start, 250, rule) == brute
