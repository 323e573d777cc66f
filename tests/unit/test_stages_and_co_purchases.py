"""The lifecycle state machine, and the co-purchase model cross-sell reads."""

from __future__ import annotations

from agents.domain.co_purchase import CoPurchaseModel, new_pairs, pair_deltas
from agents.domain.customer_state import CustomerState
from agents.domain.customer_view import summarize
from agents.domain.engine import process_event
from agents.domain.rulebook import Rulebook
from agents.domain.stages import STAGES
from tests.factories import page_view, purchase, record, ticket
from tests.rule_harness import DAY0, at, backtest, config


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
    summary = states["c1"].summary
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


def test_a_late_churn_signal_lands_before_a_later_purchase_which_stays_current() -> None:
    engine = config(Rulebook())
    state = CustomerState(customer_id="c1")
    for data in (
        purchase("c1", at(0)),
        purchase("c1", at(10)),
        ticket("c1", at(5), "t1", category="cancellation"),  # arrives after the day-10 purchase
    ):
        process_event(state, record(data), engine)
    history = summarize(state, DAY0 + 20 * 86_400_000, engine)["stage_history"]
    assert [(h["stage"], h["at"]) for h in history] == [
        ("new", at(0)),
        ("at_risk", at(5)),
        ("repeat", at(10)),
    ]


def test_new_pairs_are_those_the_purchase_completes() -> None:
    assert new_pairs(set(), {"tea"}) == []
    assert new_pairs({"tea"}, {"tea", "cups", "wine"}) == [
        ("cups", "tea"),
        ("cups", "wine"),
        ("tea", "wine"),
    ]
    assert new_pairs({"tea", "cups"}, {"tea", "cups"}) == []


def plus(at_ms: int, pairs: list[tuple[str, str]]) -> list[tuple[int, str, str, int]]:
    return [(at_ms, a, b, 1) for a, b in pairs]


def test_a_pair_is_stamped_when_the_later_of_its_first_purchases_happened() -> None:
    # tea first bought on day 5, cups on day 9: the pair is completed on day 9.
    assert pair_deltas({}, {"tea": 5, "cups": 9}, ["tea", "cups"]) == [(9, "cups", "tea", 1)]
    # A late purchase of cups on day 7 moves the pair from day 9 to day 7.
    assert pair_deltas({"tea": 5, "cups": 9}, {"tea": 5, "cups": 7}, ["cups"]) == [
        (9, "cups", "tea", -1),
        (7, "cups", "tea", 1),
    ]
    # A late purchase of cups on day 3 leaves the pair at day 5 (tea's first purchase).
    assert pair_deltas({"tea": 5, "cups": 9}, {"tea": 5, "cups": 3}, ["cups"]) == [
        (9, "cups", "tea", -1),
        (5, "cups", "tea", 1),
    ]


def test_the_model_keeps_rows_for_the_first_categories_co_purchased_only() -> None:
    model = CoPurchaseModel(max_categories=3)
    model.add(plus(1, [("a", "b")]) + plus(2, [("a", "c")]) + plus(3, [("a", "d"), ("b", "c")]))
    # Read from the log before folding and from the rows after: the same answers.
    before = (model.counts_for("a", 10), model.counts_for("b", 10), model.counts_for("d", 10))
    model.fold(10)
    after = (model.counts_for("a", 10), model.counts_for("b", 10), model.counts_for("d", 10))
    assert before == after == ({"b": 1, "c": 1}, {"a": 1, "c": 1}, {})
    assert set(model.rows) == {"a", "b", "c"}


def test_co_purchase_counts_are_read_as_of_a_time_before_and_after_folding() -> None:
    model = CoPurchaseModel()
    model.add(plus(100, [("cups", "tea")]))
    model.add(plus(200, [("cups", "tea"), ("tea", "wine")]))
    assert model.counts_for("tea", 150) == {"cups": 1}
    assert model.counts_for("tea", 201) == {"cups": 2, "wine": 1}
    assert model.fold(150) == {"cups", "tea"}
    assert model.counts_for("tea", 150) == {"cups": 1}  # same answer after folding
    assert model.counts_for("tea", 201) == {"cups": 2, "wine": 1}
    assert model.add(plus(120, [("tea", "wine")])) == {"tea", "wine"}  # late: folded at once
    restored = CoPurchaseModel.restore(model.meta(), model.rows)
    assert restored.counts_for("tea", 10**6) == {"cups": 2, "wine": 2}


def test_recommendations_rank_by_customers_and_skip_owned_and_thin_evidence() -> None:
    model = CoPurchaseModel()
    model.add(plus(1, [("cups", "tea")] * 3 + [("snacks", "tea")] * 2 + [("tea", "wine")]))
    picks = model.recommend(["tea"], {"cups"}, as_of_ms=10, limit=3, min_customers=2)
    assert picks == [{"category": "snacks", "co_purchasers": 2}]


def test_a_re_sent_co_purchase_record_is_applied_once_per_stream_and_the_ledger_persists() -> None:
    model = CoPurchaseModel()
    assert model.first_time("purchase#0", 5)
    model.add([(10, "books", "games", 1)])
    assert not model.first_time("purchase#0", 5)  # the same record again (a re-send)
    assert not model.first_time("purchase#0", 3)  # an earlier one of the same stream
    assert model.first_time("purchase#1", 3)  # another partition's stream is its own
    assert model.first_time("purchase#0", 6)
    restored = CoPurchaseModel.restore(model.meta(), model.rows)
    assert restored.applied == {"purchase#0": 6, "purchase#1": 3}
    assert not restored.first_time("purchase#0", 6)  # a restart keeps what was applied
    assert restored.first_time("purchase#0", 7)
    assert CoPurchaseModel.restore({"pending": [], "folded_before": 0}, {}).applied == {}
