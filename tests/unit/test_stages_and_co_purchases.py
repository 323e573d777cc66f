"""The lifecycle state machine, and the co-purchase model cross-sell reads."""

from __future__ import annotations

from agents.domain.co_purchase import CoPurchaseModel, new_pairs
from agents.domain.customer_state import CustomerState, StateLimits
from agents.domain.customer_view import summarize
from agents.domain.rulebook import Rulebook
from agents.domain.stages import STAGES, record_purchase_stage, record_timed_stage
from tests.factories import page_view, purchase, ticket
from tests.rule_harness import DAY0, at, backtest


def test_a_customer_walks_the_whole_state_machine() -> None:
    states: dict[str, CustomerState] = {}
    events = [
        page_view("c1", at(0)),  # prospect
        purchase("c1", at(1)),  # new
        purchase("c1", at(20)),  # repeat
        purchase("c1", at(40)),  # loyal (3 in 365 days)
        ticket("c1", at(45), "t1", category="cancellation"),  # at_risk (churn signal)
        purchase("c1", at(50)),  # loyal again: still 4 in 365 days
        # silent: loyal_at_risk on day 88 (2 x 19-day median gap), lapsed 230, churned 415
        purchase("c1", at(500)),  # reactivated after 450 days
        purchase("c1", at(510)),  # 2 purchases in 365 days: repeat
    ]
    backtest(events, 520, Rulebook(), states=states)
    history = states["c1"].stage_history
    assert [(h[1], (h[0] - DAY0) // 86_400_000) for h in history] == [
        ("prospect", 0),
        ("new", 1),
        ("repeat", 20),
        ("loyal", 40),
        ("at_risk", 45),
        ("loyal", 50),
        ("at_risk", 88),
        ("lapsed", 230),
        ("churned", 415),
        ("reactivated", 500),
        ("repeat", 510),
    ]
    assert {h[1] for h in history} == set(STAGES)  # every stage visited
    causes = {h[1]: h[2] for h in history}
    assert causes["at_risk"] == "churn signal: loyal_at_risk"
    assert causes["reactivated"] == "purchase after 450 days without one"
    summary = summarize(states["c1"], DAY0 + 520 * 86_400_000, StateLimits())
    assert summary["stage"] == "repeat"
    assert summary["stage_history"][4] == {
        "at": at(45),
        "stage": "at_risk",
        "cause": "churn signal: churn_cancellation_request",
    }


def test_a_churn_signal_does_not_move_prospects_or_lapsed_customers() -> None:
    states: dict[str, CustomerState] = {}
    events = [
        ticket("p1", at(0), "t1", category="cancellation"),
        purchase("l1", at(0)),
        ticket("l1", at(200), "t2", category="cancellation"),
    ]
    triggers = backtest(events, 210, Rulebook.only("churn_cancellation_request"), states=states)
    assert len(triggers) == 2  # both still get the trigger
    assert states["p1"].stage == "prospect" and states["l1"].stage == "lapsed"


def test_a_late_timer_stage_keeps_the_stage_of_a_later_purchase_current() -> None:
    state = CustomerState("c1")
    book = Rulebook()
    state.recent_purchases = [[DAY0, 1.0, "o1", []], [DAY0 + 10, 1.0, "o2", []]]
    state.purchase_count = 2
    state.first_purchase_ms, state.last_purchase_ms = DAY0, DAY0 + 10
    record_purchase_stage(state, DAY0, book.lifecycle)
    record_purchase_stage(state, DAY0 + 10, book.lifecycle)
    record_timed_stage(state, DAY0 + 5, "at_risk", "signal", book.lifecycle)  # processed late
    assert [h[1] for h in state.stage_history] == ["new", "at_risk", "repeat"]
    assert state.stage == "repeat"


def test_new_pairs_are_those_the_purchase_completes() -> None:
    assert new_pairs(set(), {"tea"}) == []
    assert new_pairs({"tea"}, {"tea", "cups", "wine"}) == [
        ("cups", "tea"),
        ("cups", "wine"),
        ("tea", "wine"),
    ]
    assert new_pairs({"tea", "cups"}, {"tea", "cups"}) == []


def test_co_purchase_counts_are_read_as_of_a_time_before_and_after_folding() -> None:
    model = CoPurchaseModel()
    model.add(100, [("cups", "tea")])
    model.add(200, [("cups", "tea"), ("tea", "wine")])
    assert model.counts_for("tea", 150) == {"cups": 1}
    assert model.counts_for("tea", 201) == {"cups": 2, "wine": 1}
    assert model.fold(150) == {"cups", "tea"}
    assert model.counts_for("tea", 150) == {"cups": 1}  # same answer after folding
    assert model.counts_for("tea", 201) == {"cups": 2, "wine": 1}
    assert model.add(120, [("tea", "wine")]) == {"tea", "wine"}  # late: folded at once
    restored = CoPurchaseModel.restore(model.meta(), model.rows)
    assert restored.counts_for("tea", 10**6) == {"cups": 2, "wine": 2}


def test_recommendations_rank_by_customers_and_skip_owned_and_thin_evidence() -> None:
    model = CoPurchaseModel()
    model.add(1, [("cups", "tea")] * 3 + [("snacks", "tea")] * 2 + [("tea", "wine")])
    picks = model.recommend(["tea"], {"cups"}, as_of_ms=10, limit=3, min_customers=2)
    assert picks == [{"category": "snacks", "co_purchasers": 2}]
