"""The kizuna command's argument and configuration errors (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import EXIT_USAGE, main


def test_bad_config_value_stops_start_up_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[state]\npage_view_window_days = 3\n")
    assert main(["worker", "--config", str(config)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert (
        "[state] page_view_window_days = 3 is out of range: must be an integer in 14..1500" in err
    )


def test_missing_file_argument_says_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["publish", "/no/such/file.jsonl"])
    assert info.value.code == 2
    assert (
        "expected an existing JSON-lines file, got '/no/such/file.jsonl'" in capsys.readouterr().err
    )


def test_bad_number_argument_says_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dead-letters", "--limit", "zero"])
    assert "expected a positive integer, got 'zero'" in capsys.readouterr().err


def test_no_subcommand_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert "usage: kizuna" in capsys.readouterr().err


def test_unreachable_broker_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIZUNA_BROKER", "kafka://127.0.0.1:9")
    assert main(["topics"]) == 1
    assert "cannot reach Kafka at kafka://127.0.0.1:9" in capsys.readouterr().err
