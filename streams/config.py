"""Kizuna's configuration: one TOML file, validated, with environment overrides.

Every value has a type and an allowed range or set. A wrong value, an unknown
key or a wrong type raises :class:`ConfigError` whose message names the key
(``[section] key``, or the environment variable) and what is allowed, so the
worker stops at start-up instead of misbehaving later.

Precedence: built-in defaults < the TOML file < ``KIZUNA_*`` environment
variables (the infrastructure ones the scripts and docker-compose share).

The file is optional: without ``--config FILE`` or ``$KIZUNA_CONFIG`` the
built-in defaults apply, wherever Kizuna is installed and whatever the working
directory. ``config/kizuna.toml`` in the repository lists every key with its
default (a unit test keeps it equal to the built-in defaults).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agents.domain.customer_state import StateLimits
from agents.domain.engine import EngineConfig
from agents.domain.rulebook import (
    RULE_TYPES_BY_NAME,
    EngagementDropRule,
    LifecyclePolicy,
    LoyalAtRiskRule,
    Rulebook,
    SupportTroubleRule,
)
from schemas.validation import ValidationPolicy

DEFAULT_BASE_CURRENCY: Final = "JPY"
#: Rates (yen per unit) that come with the default base currency when none are given.
DEFAULT_RATES: Final[Mapping[str, float]] = {"USD": 150.0, "EUR": 160.0}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def _spec(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    pattern: str | None = None,
    env: str | None = None,
    doc: str = "",
) -> Any:
    meta = {"min": min, "max": max, "choices": choices, "pattern": pattern, "env": env, "doc": doc}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and how Kizuna's topics are named and sized."""

    broker: str = _spec(
        "kafka://127.0.0.1:19092", pattern=r"(kafka://)?[^\s,]+(,[^\s,]+)*", env="KIZUNA_BROKER"
    )
    topic_prefix: str = _spec("", pattern=r"[A-Za-z0-9._-]*", env="KIZUNA_TOPIC_PREFIX")
    partitions: int = _spec(4, min=1, max=1024, env="KIZUNA_PARTITIONS")
    replication_factor: int = _spec(1, min=1, max=10)


@dataclass(frozen=True)
class RedisSettings:
    """The read model's Redis and how the worker writes to it."""

    url: str = _spec("redis://127.0.0.1:16379/0", pattern=r"rediss?://\S+", env="KIZUNA_REDIS_URL")
    key_prefix: str = _spec("kizuna:", pattern=r"[A-Za-z0-9:._-]*", env="KIZUNA_REDIS_PREFIX")
    flush_interval_ms: int = _spec(250, min=5, max=60_000)
    max_batch: int = _spec(500, min=1, max=100_000)


@dataclass(frozen=True)
class WorkerSettings:
    """The Faust worker: identity, state store and web port."""

    app_id: str = _spec("kizuna", pattern=r"[A-Za-z0-9._-]+", env="KIZUNA_APP_ID")
    store: str = _spec(
        "rocksdict://", choices=("rocksdict://", "rocksdb://", "memory://"), env="KIZUNA_STORE"
    )
    data_dir: str = _spec(".cache/worker", env="KIZUNA_DATA_DIR")
    web_port: int = _spec(6066, min=1024, max=65535, env="KIZUNA_WEB_PORT")
    processing_guarantee: str = _spec(
        "at_least_once",
        choices=("at_least_once", "exactly_once"),
        env="KIZUNA_PROCESSING_GUARANTEE",
    )
    session_timeout_s: float = _spec(10.0, min=6, max=300)
    # How often the worker checks that every input partition behind its log end
    # is moving; one that stood still across two checks is read again.
    stall_check_interval_s: float = _spec(
        5.0, min=0.5, max=300, env="KIZUNA_STALL_CHECK_INTERVAL_S"
    )
    # Helper processes evaluating bursts of due timers beside the event loop (0: none),
    # and the smallest chunk of due customers worth shipping to one.
    firing_processes: int = _spec(1, min=0, max=64, env="KIZUNA_FIRING_PROCESSES")
    firing_offload_min: int = _spec(32, min=1, max=128, env="KIZUNA_FIRING_OFFLOAD_MIN")
    rocksdb_block_cache_mb: int = _spec(64, min=8, max=16_384)
    rocksdb_write_buffer_mb: int = _spec(16, min=1, max=1024)
    # "low": RocksDB's compaction threads run at the lowest CPU priority, so a burst of
    # firings does not share the cores with compaction left over from an ingest.
    rocksdb_compaction_priority: str = _spec("low", choices=("low", "normal"))
    log_level: str = _spec(
        "info", choices=("debug", "info", "warning", "error"), env="KIZUNA_LOG_LEVEL"
    )


@dataclass(frozen=True)
class ValidationSettings:
    """Limits applied to incoming events before they may change state."""

    max_future_hours: float = _spec(24.0, min=0, max=24 * 366)


@dataclass(frozen=True)
class StateSettings:
    """Windows and caps of the per-customer state (see ``StateLimits``)."""

    spend_window_days: int = _spec(365, min=30, max=3660)
    page_view_window_days: int = _spec(400, min=14, max=1500)
    trouble_window_days: int = _spec(30, min=1, max=365)
    ticket_history_days: int = _spec(400, min=30, max=3660)
    dedup_horizon_days: int = _spec(400, min=1, max=3660)
    max_event_ids: int = _spec(256, min=8, max=100_000)
    max_recent_purchases: int = _spec(32, min=4, max=10_000)
    max_orders: int = _spec(256, min=4, max=100_000)
    max_categories: int = _spec(64, min=1, max=10_000)
    max_tickets: int = _spec(64, min=1, max=10_000)
    max_high_intent_views: int = _spec(32, min=4, max=10_000)
    max_refunds: int = _spec(64, min=1, max=10_000)
    max_profile_writes: int = _spec(16, min=4, max=1000)

    def limits(self, rules: Mapping[str, Any] | None = None) -> StateLimits:
        """The engine's limits; with ``rules``, order details are kept as long as the
        longest rule that describes an order may still fire for it."""
        limits = StateLimits(**dataclasses.asdict(self))
        if rules is None:
            return limits
        days = [
            getattr(r, "days", 0) for r in rules.values() if getattr(r, "describes_order", False)
        ]
        drop = rules.get(EngagementDropRule.name)
        reach = drop.recent_days + 7 * drop.baseline_weeks + 1 if drop else 0
        return dataclasses.replace(
            limits, order_detail_days=max([0, *days]) + 1, drop_reach_days=reach
        )


@dataclass(frozen=True)
class CurrencySettings:
    """Base currency of every stored amount, and rates (base units per unit).

    Without ``rates``, the default base currency comes with :data:`DEFAULT_RATES`;
    any other base comes with none (those rates are in yen)."""

    base: str = _spec(DEFAULT_BASE_CURRENCY, pattern=r"[A-Z]{3}")
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def all_rates(self) -> dict[str, float]:
        """Rates including the base currency itself (1.0)."""
        return {**self.rates, self.base: 1.0}


@dataclass(frozen=True)
class ClockSettings:
    """What "now" is: ``wall`` (real time) or ``event`` (driven by event times and ticks)."""

    mode: str = _spec("wall", choices=("wall", "event"), env="KIZUNA_CLOCK_MODE")
    tick_interval_ms: int = _spec(1000, min=10, max=3_600_000)


#: Rule name -> its parameter type (and so its defaults). Unknown names are errors.
RULE_TYPES: dict[str, type[Any]] = dict(RULE_TYPES_BY_NAME)


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    state: StateSettings = field(default_factory=StateSettings)
    currency: CurrencySettings = field(default_factory=CurrencySettings)
    clock: ClockSettings = field(default_factory=ClockSettings)
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    rules: Mapping[str, Any] = field(
        default_factory=lambda: {name: cls() for name, cls in RULE_TYPES.items()}
    )
    source: str = "defaults"

    def rulebook(self) -> Rulebook:
        """The pure engine's view of the rules."""
        return Rulebook(
            rules=dict(self.rules),
            lifecycle=self.lifecycle,
            currency=self.currency.base,
            purchase_memory=self.state.max_orders,
        )

    def validation_policy(self) -> ValidationPolicy:
        """The validator's configurable limits."""
        return ValidationPolicy(
            max_future_ms=int(self.validation.max_future_hours * 3_600_000),
            currencies=frozenset(self.currency.all_rates()),
            rates=self.currency.all_rates(),
        )

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            limits=self.state.limits(self.rules),
            rates=self.currency.all_rates(),
            rules=self.rulebook(),
        )

    def topic(self, name: str) -> str:
        """The full name of a logical topic (``purchases`` -> prefix + ``purchases``)."""
        return f"{self.kafka.topic_prefix}{name}"

    @property
    def bootstrap_servers(self) -> str:
        """The broker list without the ``kafka://`` scheme, for aiokafka."""
        return ",".join(s.removeprefix("kafka://") for s in self.kafka.broker.split(","))


_SECTIONS: dict[str, type[Any]] = {
    "kafka": KafkaSettings,
    "redis": RedisSettings,
    "worker": WorkerSettings,
    "validation": ValidationSettings,
    "state": StateSettings,
    "currency": CurrencySettings,
    "clock": ClockSettings,
    "lifecycle": LifecyclePolicy,
}


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration.

    ``path`` defaults to ``$KIZUNA_CONFIG``; with neither, no file is read and the
    built-in defaults apply (plus the environment). A file that is named but
    missing is an error naming it. ``env`` defaults to ``os.environ``.
    """
    env = os.environ if env is None else env
    chosen = path or env.get("KIZUNA_CONFIG")
    if not chosen:
        return settings_from_mapping({}, env=env, source="defaults")
    config_path = Path(chosen)
    if not config_path.is_file():
        raise ConfigError(f"config file {config_path} does not exist")
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_path} is not valid TOML: {exc}") from None
    return settings_from_mapping(raw, env=env, source=str(config_path))


def settings_from_mapping(
    raw: Mapping[str, Any], *, env: Mapping[str, str] | None = None, source: str = "<mapping>"
) -> Settings:
    """Validate an already-parsed TOML document (plus env overrides)."""
    env = {} if env is None else env
    unknown = sorted(set(raw) - set(_SECTIONS) - {"rules"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{unknown[0]}]; "
            f"known sections: {', '.join([*_SECTIONS, 'rules'])}"
        )
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = _build_section(name, cls, table, env, source)
    sections["rules"] = _build_rules(raw.get("rules", {}), env, source)
    _check_cross_keys(sections, source)
    return Settings(**sections, source=source)


def _check_cross_keys(sections: Mapping[str, Any], source: str) -> None:
    """Constraints between keys: each message names both keys and what must hold."""
    lifecycle, state, rules = sections["lifecycle"], sections["state"], sections["rules"]
    checks = [
        (
            lifecycle.churned_after_days > lifecycle.lapsed_after_days,
            f"[lifecycle] churned_after_days = {lifecycle.churned_after_days} must be "
            f"greater than lapsed_after_days = {lifecycle.lapsed_after_days}",
        ),
        (
            lifecycle.loyal_min_purchases <= state.max_recent_purchases,
            f"[lifecycle] loyal_min_purchases = {lifecycle.loyal_min_purchases} must be at "
            f"most [state] max_recent_purchases = {state.max_recent_purchases} "
            "(orders remembered in detail per customer)",
        ),
        (
            state.max_recent_purchases <= state.max_orders,
            f"[state] max_recent_purchases = {state.max_recent_purchases} must be at most "
            f"[state] max_orders = {state.max_orders}",
        ),
    ]
    trouble: SupportTroubleRule = rules[SupportTroubleRule.name]
    checks.append(
        (
            trouble.window_days <= state.trouble_window_days,
            f"[rules.{trouble.name}] window_days = {trouble.window_days} must be at most "
            f"[state] trouble_window_days = {state.trouble_window_days} (tickets kept)",
        )
    )
    engagement: EngagementDropRule = rules[EngagementDropRule.name]
    needed = engagement.recent_days + 7 * engagement.baseline_weeks
    checks.append(
        (
            needed <= state.page_view_window_days,
            f"[rules.{engagement.name}] recent_days + 7 x baseline_weeks = {needed} must be "
            f"at most [state] page_view_window_days = {state.page_view_window_days} "
            "(days of page views kept)",
        )
    )
    at_risk: LoyalAtRiskRule = rules[LoyalAtRiskRule.name]
    checks.append(
        (
            at_risk.gap_sample < state.max_recent_purchases,
            f"[rules.{at_risk.name}] gap_sample = {at_risk.gap_sample} must be less than "
            f"[state] max_recent_purchases = {state.max_recent_purchases}",
        )
    )
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}")


def _build_rules(table: Any, env: Mapping[str, str], source: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [rules] must be a table of [rules.<name>] tables")
    unknown = sorted(set(table) - set(RULE_TYPES))
    if unknown:
        raise ConfigError(
            f"{source}: unknown rule [rules.{unknown[0]}]; known rules: {', '.join(RULE_TYPES)}"
        )
    rules = {}
    for name, cls in RULE_TYPES.items():
        rule_table = table.get(name, {})
        if not isinstance(rule_table, Mapping):
            raise ConfigError(f"{source}: [rules.{name}] must be a table")
        rules[name] = _build_section(f"rules.{name}", cls, rule_table, env, source)
    return rules


def _build_section(
    name: str, cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str], source: str
) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key [{name}] {unknown[0]}; known keys: {', '.join(fields)}"
        )
    values: dict[str, Any] = {}
    for fname, f in fields.items():
        if name == "currency" and fname == "rates":
            if "rates" in table:
                values[fname] = _check_rates(table["rates"], source)
            elif values.get("base", DEFAULT_BASE_CURRENCY) != DEFAULT_BASE_CURRENCY:
                values[fname] = {}
            continue
        env_name = f.metadata.get("env")
        if env_name and env.get(env_name, "") != "":
            values[fname] = _coerce_env(env_name, env[env_name], f)
            where = f"environment variable {env_name}"
        elif fname in table:
            values[fname] = table[fname]
            where = f"{source}: [{name}] {fname}"
        else:
            continue
        _check_value(where, values[fname], f)
    return cls(**values)


def _coerce_env(env_name: str, text: str, f: dataclasses.Field[Any]) -> Any:
    wanted = type(f.default)
    try:
        return wanted(text) if wanted in (int, float) else text
    except ValueError:
        raise ConfigError(
            f"environment variable {env_name}={text!r} must be {_describe(f)}"
        ) from None


def _check_value(where: str, value: Any, f: dataclasses.Field[Any]) -> None:
    wanted = type(f.default)
    ok = isinstance(value, wanted) and (wanted is bool or not isinstance(value, bool))
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise ConfigError(f"{where} = {value!r} must be {_describe(f)}")
    meta = f.metadata
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{where} = {value!r} is out of range: must be {_describe(f)}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where} = {value!r} must be one of {', '.join(choices)}")
    pattern = meta.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ConfigError(f"{where} = {value!r} must match {pattern}")


def _describe(f: dataclasses.Field[Any]) -> str:
    wanted = type(f.default)
    kind = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        wanted, wanted.__name__
    )
    low, high = f.metadata.get("min"), f.metadata.get("max")
    if low is not None and high is not None:
        return f"{kind} in {low:g}..{high:g}"
    return kind


def _check_rates(rates: Any, source: str) -> dict[str, float]:
    if not isinstance(rates, Mapping):
        raise ConfigError(f"{source}: [currency] rates must be a table of CODE = rate")
    out: dict[str, float] = {}
    for code, rate in rates.items():
        where = f"{source}: [currency.rates] {code}"
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ConfigError(f"{where}: currency codes are three capital letters (ISO 4217)")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ConfigError(f"{where} = {rate!r} must be a number > 0")
        out[code] = float(rate)
    return out
