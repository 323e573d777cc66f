"""Configuration: defaults load, and every kind of bad value names its key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from agents.domain.rulebook import RULE_TYPES
from streams.config import ConfigError, Settings, load_settings, settings_from_mapping

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "kizuna.toml"


def test_shipped_config_is_valid_and_matches_the_built_in_defaults() -> None:
    shipped = load_settings(SHIPPED_CONFIG, env={})
    defaults = settings_from_mapping({"currency": {"rates": {"USD": 150.0, "EUR": 160.0}}})
    assert shipped.kafka == defaults.kafka
    assert shipped.state == defaults.state
    assert shipped.worker == defaults.worker
    assert shipped.currency.all_rates() == {"USD": 150.0, "EUR": 160.0, "JPY": 1.0}
    assert shipped.rules == defaults.rules and shipped.lifecycle == defaults.lifecycle
    assert set(shipped.rules) == {t.name for t in RULE_TYPES}  # every rule is in the file


def test_rules_are_tuned_and_switched_off_in_the_file() -> None:
    settings = settings_from_mapping(
        {
            "rules": {
                "cross_sell": {"enabled": False},
                "churn_support_trouble": {"min_tickets": 3, "cooldown_days": 0},
            },
            "lifecycle": {"loyal_min_purchases": 5},
        }
    )
    book = settings.rulebook()
    assert book.active("cross_sell") is None
    assert book.active("churn_support_trouble").min_tickets == 3
    assert book.active("churn_support_trouble").cooldown_days == 0
    assert book.lifecycle.loyal_min_purchases == 5
    assert book.purchase_memory == settings.state.max_orders


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"kafka": {"partitions": 0}},
            "[kafka] partitions = 0 is out of range: must be an integer in 1..1024",
        ),
        ({"kafka": {"partitions": 2.5}}, "[kafka] partitions = 2.5 must be an integer"),
        ({"kafka": {"partitons": 3}}, "unknown key [kafka] partitons"),
        ({"rulez": {}}, "unknown section [rulez]"),
        ({"rules": {"lapse_30d": {}}}, "unknown rule [rules.lapse_30d]; known rules: lapse_90d"),
        ({"rules": {"lapse_90d": {"days": 0}}}, "[rules.lapse_90d] days = 0 is out of range"),
        ({"rules": {"lapse_90d": {"enabled": "yes"}}}, "enabled = 'yes' must be true or false"),
        (
            {"rules": {"lapse_180d": {"min_lifetime_spend": -1}}},
            "[rules.lapse_180d] min_lifetime_spend = -1 is out of range: "
            "must be a number in 0..1e+12",
        ),
        (
            {"lifecycle": {"lapsed_after_days": 400}},
            "[lifecycle] churned_after_days = 365 must be greater than lapsed_after_days = 400",
        ),
        ({"clock": {"mode": "lunar"}}, "[clock] mode = 'lunar' must be one of wall, event"),
        ({"worker": {"store": "s3://"}}, "[worker] store = 's3://' must be one of"),
        ({"redis": {"url": "http://x"}}, "[redis] url = 'http://x' must match"),
        ({"state": {"max_tickets": True}}, "[state] max_tickets = True must be an integer"),
        ({"currency": {"rates": {"USD": -1}}}, "[currency.rates] USD = -1 must be a number > 0"),
        ({"kafka": "x"}, "[kafka] must be a table"),
        ({"rules": {"churn_everything": {}}}, "unknown rule [rules.churn_everything]"),
        ({"rules": {"cross_sell": {"days": 0}}}, "[rules.cross_sell] days = 0 is out of range"),
        (
            {"rules": {"churn_engagement_drop": {"drop_ratio": 1.5}}},
            "[rules.churn_engagement_drop] drop_ratio = 1.5 is out of range: "
            "must be a number in 0.01..1",
        ),
        (
            {"rules": {"loyal_at_risk": {"gap_sample": 7.5}}},
            "[rules.loyal_at_risk] gap_sample = 7.5 must be an integer",
        ),
        (
            {"rules": {"reactivated": {"cooldown_days": -1}}},
            "[rules.reactivated] cooldown_days = -1 is out of range: must be an integer in 0..3650",
        ),
        (
            {"rules": {"high_intent_no_purchase": {"min_views": 0}}},
            "[rules.high_intent_no_purchase] min_views = 0 is out of range",
        ),
        (
            {"rules": {"churn_support_trouble": {"window_days": 60}}},
            "[rules.churn_support_trouble] window_days = 60 must be at most "
            "[state] trouble_window_days = 30",
        ),
        (
            {
                "rules": {"churn_engagement_drop": {"baseline_weeks": 12}},
                "state": {"page_view_window_days": 84},
            },
            "[rules.churn_engagement_drop] recent_days + 7 x baseline_weeks = 98 must be at most "
            "[state] page_view_window_days = 84",
        ),
        (
            {"lifecycle": {"loyal_min_purchases": 40}},
            "[lifecycle] loyal_min_purchases = 40 must be at most [state] max_recent_purchases",
        ),
        ({"lifecycle": {"loyal_window_days": 3}}, "[lifecycle] loyal_window_days = 3 is out"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_range(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw)
    assert message in str(info.value)


def test_environment_overrides_file_and_is_validated() -> None:
    env = {"KIZUNA_BROKER": "kafka://broker-a:9092", "KIZUNA_PARTITIONS": "8"}
    settings = settings_from_mapping({"kafka": {"partitions": 2}}, env=env)
    assert settings.kafka.partitions == 8
    assert settings.bootstrap_servers == "broker-a:9092"
    with pytest.raises(
        ConfigError, match="environment variable KIZUNA_PARTITIONS = 0 is out of range"
    ):
        settings_from_mapping({}, env={"KIZUNA_PARTITIONS": "0"})


def test_shipped_config_is_exactly_the_built_in_defaults() -> None:
    """config/kizuna.toml documents the defaults; loading it changes nothing."""
    shipped = load_settings(SHIPPED_CONFIG, env={})
    assert dataclasses.replace(shipped, source="defaults") == load_settings(env={}) == Settings()
    raw = tomllib.loads(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    assert set(raw) == {f.name for f in dataclasses.fields(Settings)} - {"source"}
    for name, value in raw.items():  # every section and rule is written out in full
        section = getattr(shipped, name)
        items = section.items() if name == "rules" else [(name, section)]
        for key, obj in items:
            table = value[key] if name == "rules" else value
            assert set(table) == {f.name for f in dataclasses.fields(obj)}, key


def test_no_file_means_the_built_in_defaults_wherever_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"KIZUNA_PARTITIONS": "8"})
    assert settings.source == "defaults"
    assert settings == dataclasses.replace(
        Settings(), kafka=dataclasses.replace(Settings().kafka, partitions=8)
    )
    assert settings.currency.all_rates() == {"USD": 150.0, "EUR": 160.0, "JPY": 1.0}


def test_kizuna_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k.toml"
    path.write_text("[kafka]\npartitions = 2\n")
    assert load_settings(env={"KIZUNA_CONFIG": str(path)}).kafka.partitions == 2
    assert load_settings(path, env={"KIZUNA_CONFIG": "/nope.toml"}).source == str(path)
    with pytest.raises(ConfigError, match=r"config file /nope\.toml does not exist"):
        load_settings(env={"KIZUNA_CONFIG": "/nope.toml"})
    path.write_text("[kafka]\npartitions = 0\n")
    with pytest.raises(ConfigError, match=r"k\.toml: \[kafka\] partitions = 0 is out of range"):
        load_settings(path, env={})


def test_default_rates_are_for_the_default_base_currency() -> None:
    assert settings_from_mapping({"currency": {"base": "USD"}}).currency.all_rates() == {"USD": 1.0}
    assert settings_from_mapping({"currency": {"rates": {}}}).currency.all_rates() == {"JPY": 1.0}
    usd = settings_from_mapping({"currency": {"base": "USD", "rates": {"EUR": 1.1}}})
    assert usd.currency.all_rates() == {"EUR": 1.1, "USD": 1.0}


def test_missing_or_broken_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[kafka\npartitions = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, env={})


def test_topic_names_take_the_prefix() -> None:
    settings = settings_from_mapping({"kafka": {"topic_prefix": "t1."}})
    assert settings.topic("purchases") == "t1.purchases"
