"""The one loop that drives the engine over a partition: apply events, fire what is due.

The worker (per partition, per batch), ``kizuna backtest`` (time order) and
``kizuna backtest --as-received`` (file order) all run this class, so they
apply the same functions in the same way; they differ only in where states
come from and go to, and in which bound they fire up to. Pure: no Kafka, no
clock reads; every time is passed in (epoch ms).

Contract:

* :meth:`apply` folds one valid event into its customer's state (creating
  it), indexes the customer's next due moment and marks the customer changed.
* :meth:`fire` evaluates every moment due before ``bound`` — customers in
  (due, customer id) order — and returns the triggers in that order.
* :meth:`take_changed` hands the changed states to the caller (to write
  them) and forgets which were changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from agents.domain.co_purchase import CoPurchaseModel, Delta
from agents.domain.customer_state import CHANGED, CustomerState
from agents.domain.engine import EngineConfig, Step, process_event
from agents.domain.lifecycle import fire_due
from agents.domain.timer_index import TimerIndex
from schemas.events import CustomerEvent
from schemas.triggers import Trigger

#: Loads a customer's stored state (``None``: a new customer).
Loader = Callable[[str], CustomerState | None]


@dataclass
class Driver:
    """One partition's engine: states in use, the due-moment index, the co-purchase model."""

    config: EngineConfig
    partition: int = 0
    load: Loader | None = None
    states: dict[str, CustomerState] = field(default_factory=dict)
    index: TimerIndex = field(default_factory=TimerIndex)
    model: CoPurchaseModel = field(init=False)
    changed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.model = CoPurchaseModel(max_categories=self.config.co_purchase_categories)

    def state(self, customer_id: str) -> CustomerState:
        """The customer's state (loaded on first use, created if new)."""
        state = self.states.get(customer_id)
        if state is None:
            stored = self.load(customer_id) if self.load is not None else None
            state = stored if stored is not None else CustomerState(customer_id=customer_id)
            self.states[customer_id] = state
        return state

    def apply(self, event: CustomerEvent, *, horizon_ms: int | None) -> Step:
        """Fold ``event`` in; ``horizon_ms``: see :func:`agents.domain.engine.process_event`."""
        state = self.state(event.customer_id)
        step = process_event(state, event, self.config, horizon_ms=horizon_ms)
        if step.outcome in CHANGED:
            state.partition = self.partition
            self.index.schedule(self.partition, state.customer_id, state.next_due)
            self.changed.add(state.customer_id)
        return step

    def share(self, deltas: Iterable[Delta]) -> set[str]:
        """Record co-purchase changes in this partition's model; returns rows changed."""
        return self.model.add(deltas)

    def due_customers(self, bound: int) -> Iterator[str]:
        """Customers with a moment due before ``bound``, earliest first; each leaves the
        index (re-index it after firing)."""
        return self.index.pop_due(self.partition, bound)

    def fire(
        self, bound: int, *, now_ms: int | None = None, stepwise: bool = False
    ) -> list[Trigger]:
        """Fire every moment due before ``bound``: each due customer once, up to
        ``bound`` (a customer's moments are evaluated in due order, each as of its due
        time, so firing up to ``bound`` at once gives the triggers that firing one due
        time at a time would).

        ``stepwise``: return the triggers in global due order, customer id breaking
        ties (the backtest's output order); otherwise customer by customer.
        """
        triggers: list[Trigger] = []
        for customer_id in list(self.due_customers(bound)):
            triggers.extend(self.fire_customer(customer_id, bound, now_ms=now_ms))
        if stepwise:
            triggers.sort(key=lambda t: (t.due_at, t.customer_id))  # stable: rule order kept
        self.model.fold(max(bound, self.model.folded_before))
        return triggers

    def fire_customer(self, customer_id: str, bound: int, *, now_ms: int | None) -> list[Trigger]:
        """Fire one customer's moments due before ``bound`` and re-index it."""
        state = self.state(customer_id)
        fired = fire_due(
            state, before_ms=bound, book=self.config.rules, co_purchases=self.model, now_ms=now_ms
        )
        state.version += 1
        self.changed.add(customer_id)
        self.index.schedule(self.partition, customer_id, state.next_due)
        return fired

    def take_changed(self) -> list[CustomerState]:
        """The states changed since the last call, by customer id."""
        changed = [self.states[c] for c in sorted(self.changed)]
        self.changed.clear()
        return changed

    def evict(self) -> None:
        """Forget the loaded states (the worker reloads per batch from its table)."""
        self.states.clear()
