"""The command line: options to configuration, and a real process that stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from twilio_sim import ConfigError, Scenario
from twilio_sim.cli import build_parser, config_from_args

ROOT = Path(__file__).resolve().parents[2]
AC = "AC" + "1" * 32
MG = "MG" + "2" * 32


def test_options_build_the_configuration(tmp_path: Path) -> None:
    config_file = tmp_path / "sim.json"
    config_file.write_text(
        json.dumps({"accounts": {"ACfile": "t"}, "landline_numbers": ["+14155550124"]})
    )
    args = build_parser().parse_args(
        [
            "--config", str(config_file),
            "--account", f"{AC}:tok:en",
            "--service", f"{MG}:+14155550100, +12125550100",
            "--scenario", "out_of_order",
            "--callback-delay-ms", "0",
            "--create-accept-delay-ms", "250",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.accounts == {"ACfile": "t", AC: "tok:en"}
    assert config.services == {MG: ["+14155550100", "+12125550100"]}
    assert config.landline_numbers == {"+14155550124"}
    assert config.default_scenario is Scenario.OUT_OF_ORDER
    assert config.callback_delay_ms == 0
    assert config.create_accept_delay_ms == 250
    assert config.sign_url_fragment is False
    signing = config_from_args(build_parser().parse_args(["--sign-url-fragment"]))
    assert signing.sign_url_fragment is True


@pytest.mark.parametrize(
    "argv", [["--account", "ACnocolon"], ["--service", "MG:4155550100"], ["--config", "/nope"]]
)
def test_bad_options_raise_config_error(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        config_from_args(build_parser().parse_args(argv))


def test_help_mentions_the_essentials(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    needles = ("--account SID:TOKEN", "--service", "/_sim/messages", "/_sim/stats", "+15005550001")
    for needle in (*needles, "--create-accept-delay-ms"):
        assert needle in text


def test_process_prints_its_url_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "twilio_sim", "--port", "0", "--account", f"{AC}:t"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{url}/_sim/health", timeout=5) as resp:
            assert json.load(resp)["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    logs = process.stderr.read()
    assert "Twilio simulator ready at" in logs
    assert "stopped" in logs
