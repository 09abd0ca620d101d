"""Configuration: merge semantics, validation, per-scenario delays."""

from __future__ import annotations

import pytest

from twilio_sim import ConfigError, Scenario, SimConfig


def test_mappings_merge_key_by_key_and_null_removes() -> None:
    config = SimConfig(accounts={"AC1": "t1"}, scenarios={"+14155550001": Scenario.FAILED})
    merged = config.merged(
        {"accounts": {"AC2": "t2"}, "scenarios": {"+14155550001": None, "+1415555002": "none"}}
    )
    assert merged.accounts == {"AC1": "t1", "AC2": "t2"}
    assert merged.scenarios == {"+1415555002": Scenario.NONE}
    assert config.accounts == {"AC1": "t1"}  # the original is untouched


def test_sets_and_scalars_are_replaced() -> None:
    config = SimConfig(landline_numbers=frozenset({"+14155550001"}))
    merged = config.merged({"landline_numbers": ["+14155550002"], "default_scenario": "failed"})
    assert merged.landline_numbers == {"+14155550002"}
    assert merged.default_scenario is Scenario.FAILED


@pytest.mark.parametrize(
    "patch",
    [
        {"no_such_key": 1},
        {"default_scenario": "teleported"},
        {"services": {"MG1": ["4155550100"]}},
        {"callback_max_concurrency": 0},
    ],
)
def test_bad_patches_raise_config_error(patch: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SimConfig().merged(patch)


def test_scenario_delay_overrides_the_global_delay() -> None:
    config = SimConfig(callback_delay_ms=5, scenario_delays_ms={Scenario.FAILED: 250})
    assert config.delay_for(Scenario.FAILED) == 0.25
    assert config.delay_for(Scenario.DELIVERED) == 0.005


def test_public_view_masks_tokens() -> None:
    view = SimConfig(accounts={"AC1": "secret"}).public_view()
    assert view["accounts"] == {"AC1": "***"}
