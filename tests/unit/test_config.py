from __future__ import annotations

from pathlib import Path

import pytest

from streamfunnel.config import build_rules, load_config
from streamfunnel.errors import ConfigError, StreamfunnelError
from streamfunnel.rules import INDUSTRIES


@pytest.mark.parametrize("industry", INDUSTRIES)
def test_presets_are_consistent(industry: str) -> None:
    rules = build_rules({"industry": industry})
    micro_names = {m.name for m in rules.micro}
    for funnel in rules.funnels:
        assert funnel.steps[0] == "visit"
        assert set(funnel.steps[1:]) <= micro_names | {rules.macro_name}
    for seq in rules.sequences:
        assert set(seq.steps) <= micro_names | {rules.macro_name}
    for micro in rules.micro:
        assert all(c.type not in rules.macro_types for c in micro.conditions)
    assert rules.session_timeout_s == 1800
    assert rules.allowed_lateness_s == 60


def test_defaults_without_file() -> None:
    config = load_config(env={})
    assert config.rules.industry == "ecommerce"
    assert config.rules.macro_name == "purchase"
    assert config.source == "defaults"


def test_file_environment_and_flag_precedence(tmp_path: Path) -> None:
    path = tmp_path / "streamfunnel.toml"
    path.write_text('industry = "saas"\n[session]\ntimeout_s = 600\n')
    config = load_config(path, env={})
    assert (config.rules.industry, config.rules.session_timeout_s) == ("saas", 600)
    env = {"STREAMFUNNEL_SESSION_TIMEOUT_S": "120", "STREAMFUNNEL_INDUSTRY": "content"}
    config = load_config(path, env=env)
    assert (config.rules.industry, config.rules.session_timeout_s) == ("content", 120)
    config = load_config(path, env=env, industry="freemium")
    assert config.rules.industry == "freemium"


def test_shipped_example_configuration_loads() -> None:
    example = Path(__file__).parents[2] / "deploy" / "streamfunnel.toml"
    config = load_config(example, env={})
    # The example documents the defaults; it must say what the code does.
    assert config.rules == build_rules({})


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"industri": "saas"}, "industri"),
        ({"industry": "retail"}, "industry"),
        ({"session": {"timeout_s": 0}}, "session.timeout_s"),
        ({"session": {"timeout_s": "30m"}}, "session.timeout_s"),
        ({"session": {"allowed_lateness_s": -1}}, "session.allowed_lateness_s"),
        ({"session": {"idle_s": 1}}, "session.idle_s"),
        ({"micro": {"x": {"conditions": []}}}, "micro.x.conditions"),
        ({"micro": {"x": {}}}, "micro.x.conditions"),
        (
            {"micro": {"x": {"conditions": [{"type": "a", "count": 0}]}}},
            "micro.x.conditions[0].count",
        ),
        (
            {"micro": {"x": {"conditions": [{"type": "a", "at_least": 1}]}}},
            "micro.x.conditions[0].property",
        ),
        (
            {"micro": {"x": {"conditions": [{"typ": "a"}]}}},
            "micro.x.conditions[0].typ",
        ),
        (
            {"funnels": [{"name": "f", "steps": ["visit", "add_to_kart"]}]},
            "funnels[0].steps[1]",
        ),
        ({"funnels": []}, "funnels"),
        (
            {"sequences": [{"name": "s", "steps": ["add_to_cart"]}]},
            "sequences[0].steps",
        ),
        ({"intent": {"weights": {"nope": 3}}}, "intent.weights.nope"),
        ({"macro": {"types": []}}, "macro.types"),
        ({"aliases": {"X": 3}}, "aliases.X"),
        ({"include_contact": "yes"}, "include_contact"),
    ],
)
def test_bad_configuration_names_the_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_rules(doc)
    assert caught.value.key == key
    assert isinstance(caught.value, StreamfunnelError)


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="STREAMFUNNEL_INCLUDE_CONTACT"):
        load_config(env={"STREAMFUNNEL_INCLUDE_CONTACT": "maybe"})


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("industry = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})
