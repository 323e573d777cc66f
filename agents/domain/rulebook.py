"""The rule catalogue's parameters: every rule, its defaults and allowed ranges. Pure.

Each rule is a frozen dataclass whose fields are its tunable parameters. The
field metadata (``min``/``max``) is the allowed range the config loader
enforces, so the domain and the config file cannot disagree. Days and hours
are whole units of event time; money is in the base currency.

Common to every rule: ``enabled``, and ``cooldown_days`` (after the rule fired
for a customer, it stays quiet for that customer this many days, whatever the
episode). Each rule also fires at most once per *episode*; what an episode is
depends on the rule and is stated in its docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


def param(default: Any, *, min: float | None = None, max: float | None = None) -> Any:
    """A rule parameter with its default and allowed range (inclusive)."""
    return field(default=default, metadata={"min": min, "max": max})


@dataclass(frozen=True)
class RuleParams:
    """Parameters every rule has."""

    name: ClassVar[str] = ""
    marks_at_risk: ClassVar[bool] = False  # a firing is a churn signal (stage at_risk)
    reads_co_purchases: ClassVar[bool] = False  # its evaluation reads the co-purchase model
    describes_order: ClassVar[bool] = False  # its facts name an order ``days`` after it

    enabled: bool = param(True)
    cooldown_days: int = param(0, min=0, max=3650)


@dataclass(frozen=True)
class LapseRule(RuleParams):
    """Lifetime spend >= ``min_lifetime_spend`` and ``days`` days without a purchase.
    Episode: the purchase the silence started from."""

    name: ClassVar[str] = "lapse_90d"
    days: int = param(90, min=1, max=3650)
    min_lifetime_spend: float = param(5000.0, min=0, max=1e12)


@dataclass(frozen=True)
class Lapse180Rule(LapseRule):
    name: ClassVar[str] = "lapse_180d"
    days: int = param(180, min=1, max=3650)


@dataclass(frozen=True)
class SupportTroubleRule(RuleParams):
    """``min_tickets`` or more trouble/complaint tickets opened within ``window_days``.
    Episode: the opening of the ticket that reached the count."""

    name: ClassVar[str] = "churn_support_trouble"
    marks_at_risk: ClassVar[bool] = True
    cooldown_days: int = param(30, min=0, max=3650)
    min_tickets: int = param(2, min=1, max=100)
    window_days: int = param(30, min=1, max=365)


@dataclass(frozen=True)
class CancellationRequestRule(RuleParams):
    """A ticket opened with category ``cancellation``. Episode: that ticket's opening."""

    name: ClassVar[str] = "churn_cancellation_request"
    marks_at_risk: ClassVar[bool] = True
    cooldown_days: int = param(7, min=0, max=3650)


@dataclass(frozen=True)
class EngagementDropRule(RuleParams):
    """Page views per week over the last ``recent_days`` complete UTC days fell below
    ``drop_ratio`` x the weekly average of the ``baseline_weeks`` weeks before them,
    for a customer whose baseline was at least ``min_baseline_weekly_views``.
    Checked at UTC midnights. Episode: the midnight the drop was seen."""

    name: ClassVar[str] = "churn_engagement_drop"
    marks_at_risk: ClassVar[bool] = True
    cooldown_days: int = param(28, min=0, max=3650)
    recent_days: int = param(14, min=1, max=90)
    baseline_weeks: int = param(8, min=1, max=52)
    drop_ratio: float = param(0.5, min=0.01, max=1.0)
    min_baseline_weekly_views: float = param(3.0, min=0.1, max=1e6)


@dataclass(frozen=True)
class PostPurchaseFollowUpRule(RuleParams):
    """``days`` days after a purchase, ask how it went; moot if a newer purchase came
    or a trouble/complaint ticket is open then. Episode: the purchase."""

    name: ClassVar[str] = "post_purchase_follow_up"
    describes_order: ClassVar[bool] = True
    days: int = param(3, min=1, max=365)


@dataclass(frozen=True)
class SecondPurchaseNudgeRule(RuleParams):
    """A first-time buyer with no second purchase ``days`` days later (F2 conversion).
    Episode: the first purchase."""

    name: ClassVar[str] = "second_purchase_nudge"
    describes_order: ClassVar[bool] = True
    days: int = param(30, min=1, max=3650)


@dataclass(frozen=True)
class LoyalPromotionRule(RuleParams):
    """The customer just became loyal (see ``LifecyclePolicy``). Episode: that purchase."""

    name: ClassVar[str] = "loyal_promotion"


@dataclass(frozen=True)
class LoyalAtRiskRule(RuleParams):
    """A loyal customer silent for more than ``gap_multiplier`` x their own median gap
    between purchases (over the newest ``gap_sample`` gaps, at least ``min_gap_days``).
    Episode: the last purchase before the silence."""

    name: ClassVar[str] = "loyal_at_risk"
    marks_at_risk: ClassVar[bool] = True
    cooldown_days: int = param(30, min=0, max=3650)
    gap_multiplier: float = param(2.0, min=1.0, max=100.0)
    min_gap_days: int = param(7, min=1, max=3650)
    gap_sample: int = param(12, min=1, max=30)


@dataclass(frozen=True)
class HighIntentNoPurchaseRule(RuleParams):
    """``min_views`` or more cart/checkout/pricing views within ``window_hours`` and no
    purchase from the first of them until ``wait_hours`` after the last.
    Episode: the view that reached the count."""

    name: ClassVar[str] = "high_intent_no_purchase"
    cooldown_days: int = param(7, min=0, max=3650)
    min_views: int = param(3, min=1, max=30)
    window_hours: int = param(24, min=1, max=24 * 30)
    wait_hours: int = param(24, min=1, max=24 * 30)


@dataclass(frozen=True)
class CrossSellRule(RuleParams):
    """``days`` days after a purchase in categories A, recommend the categories most
    often co-purchased with A by all customers (at least ``min_co_purchases`` customers),
    that this customer has not bought; moot if a newer purchase came. Episode: the
    purchase."""

    name: ClassVar[str] = "cross_sell"
    describes_order: ClassVar[bool] = True
    reads_co_purchases: ClassVar[bool] = True
    cooldown_days: int = param(14, min=0, max=3650)
    days: int = param(7, min=1, max=365)
    max_recommendations: int = param(3, min=1, max=20)
    min_co_purchases: int = param(2, min=1, max=1_000_000)
    # Categories the shared co-purchase model keeps rows for, the first co-purchased
    # first: bounds its memory however free-form the categories are.
    model_categories: int = param(1000, min=2, max=100_000)


@dataclass(frozen=True)
class ReactivatedRule(RuleParams):
    """A lapsed or churned customer bought again (welcome back). Episode: that purchase."""

    name: ClassVar[str] = "reactivated"


#: Every rule type, in the order rules are evaluated when timers share a due time.
RULE_TYPES: tuple[type[RuleParams], ...] = (
    LapseRule,
    Lapse180Rule,
    SupportTroubleRule,
    CancellationRequestRule,
    EngagementDropRule,
    PostPurchaseFollowUpRule,
    SecondPurchaseNudgeRule,
    LoyalPromotionRule,
    LoyalAtRiskRule,
    HighIntentNoPurchaseRule,
    CrossSellRule,
    ReactivatedRule,
)
RULE_TYPES_BY_NAME: dict[str, type[RuleParams]] = {t.name: t for t in RULE_TYPES}


@dataclass(frozen=True)
class LifecyclePolicy:
    """Stage thresholds. Loyal: ``loyal_min_purchases`` purchases within the trailing
    ``loyal_window_days``; lapsed, then churned after that many days without one."""

    lapsed_after_days: int = param(180, min=1, max=3650)
    churned_after_days: int = param(365, min=2, max=3650)
    loyal_min_purchases: int = param(3, min=2, max=1000)
    loyal_window_days: int = param(365, min=7, max=3650)


def default_rules() -> dict[str, RuleParams]:
    return {t.name: t() for t in RULE_TYPES}


@dataclass(frozen=True)
class Rulebook:
    """Every rule and threshold the engine applies; built from the config file."""

    rules: Mapping[str, RuleParams] = field(default_factory=default_rules)
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    currency: str = "JPY"
    purchase_memory: int = 32  # [state] max_recent_purchases: purchases a count can see

    def active(self, name: str) -> Any:
        """The parameters of rule ``name`` if it is switched on, else ``None``."""
        rule = self.rules.get(name)
        return rule if rule is not None and rule.enabled else None

    @classmethod
    def only(cls, *names: str, **overrides: Any) -> Rulebook:
        """Default parameters with only ``names`` switched on (tests, what-if backtests).

        ``overrides`` maps a rule name to a dict of parameter values.
        """
        unknown = set(names) - set(RULE_TYPES_BY_NAME)
        if unknown:
            raise KeyError(f"unknown rules: {sorted(unknown)}")
        rules = {
            t.name: t(**{"enabled": t.name in names, **overrides.get(t.name, {})})
            for t in RULE_TYPES
        }
        return cls(rules=rules)

    @property
    def active_lapse_rules(self) -> tuple[LapseRule, ...]:
        return tuple(r for r in self.rules.values() if isinstance(r, LapseRule) and r.enabled)
