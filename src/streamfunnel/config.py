"""Loading the TOML configuration, with ``STREAMFUNNEL_*`` environment overrides.

Every key is checked: an unknown key, a wrong type or a reference to a micro
conversion that does not exist fails at start with the key's full path, instead
of quietly producing a funnel nobody asked for. ``deploy/streamfunnel.toml``
documents every key with its default.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from streamfunnel.errors import ConfigError
from streamfunnel.presets import preset
from streamfunnel.rules import (
    INDUSTRIES,
    VISIT,
    Condition,
    Funnel,
    MicroConversion,
    Rules,
    Sequence,
)
from streamfunnel.settings import (
    KafkaSettings,
    TopicSettings,
    WorkerSettings,
    build_kafka,
    build_topics,
    build_worker,
)
from streamfunnel.vocabulary import default_aliases

logger = logging.getLogger(__name__)

ENV_PREFIX: Final = "STREAMFUNNEL_"

# Scalar settings that an environment variable may override, with their types.
# STREAMFUNNEL_<SECTION>_<KEY> sets [section] key; top-level keys drop SECTION_.
SCALARS: Final[dict[tuple[str, ...], type]] = {
    ("industry",): str,
    ("include_contact",): bool,
    ("session", "timeout_s"): float,
    ("session", "allowed_lateness_s"): float,
    ("intent", "max"): float,
    ("kafka", "bootstrap_servers"): str,
    ("kafka", "client_id"): str,
    ("kafka", "sasl_mechanism"): str,
    ("kafka", "sasl_username"): str,
    ("kafka", "sasl_password"): str,
    ("kafka", "tls"): bool,
    ("kafka", "tls_ca_file"): str,
    ("kafka", "tls_cert_file"): str,
    ("kafka", "tls_key_file"): str,
    ("kafka", "tls_key_password"): str,
    ("topics", "inputs"): list,
    ("topics", "abandonments"): str,
    ("topics", "conversions"): str,
    ("topics", "metrics"): str,
    ("topics", "dead_letter"): str,
    ("topics", "partitions"): int,
    ("topics", "replication_factor"): int,
    ("worker", "app_id"): str,
    ("worker", "state_dir"): str,
    ("worker", "store"): str,
    ("worker", "processing_guarantee"): str,
    ("worker", "web_host"): str,
    ("worker", "web_port"): int,
    ("worker", "batch_max"): int,
    ("worker", "batch_within_s"): float,
    ("worker", "tick_interval_s"): float,
    ("worker", "idle_after_s"): float,
    ("worker", "metrics_window_s"): float,
}

_TOP_KEYS: Final = {
    "kafka",
    "topics",
    "worker",
    "industry",
    "include_contact",
    "session",
    "macro",
    "aliases",
    "micro",
    "funnels",
    "sequences",
    "intent",
}
_CONDITION_KEYS: Final = {"type", "property", "at_least", "equals", "count"}


@dataclass(frozen=True)
class Config:
    """The loaded configuration: funnel rules plus the worker's settings."""

    rules: Rules
    kafka: KafkaSettings
    topics: TopicSettings
    worker: WorkerSettings
    source: str


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    industry: str | None = None,
) -> Config:
    """Read ``path`` (or defaults), apply environment overrides, then ``industry``."""
    doc: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        doc = read_toml(path)
        source = str(path)
    apply_env_overrides(doc, os.environ if env is None else env)
    if industry is not None:
        doc["industry"] = industry
    rules = build_rules(doc)
    config = Config(
        rules=rules,
        kafka=build_kafka(table(doc, "kafka")),
        topics=build_topics(table(doc, "topics")),
        worker=build_worker(table(doc, "worker")),
        source=source,
    )
    logger.debug("configuration loaded from %s (industry %s)", source, rules.industry)
    return config


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc


def apply_env_overrides(doc: dict[str, Any], env: Mapping[str, str]) -> None:
    """Overlay ``STREAMFUNNEL_*`` variables on the scalar keys of ``doc``."""
    for keys, kind in SCALARS.items():
        name = ENV_PREFIX + "_".join(keys).upper()
        if name not in env:
            continue
        table = doc
        for section in keys[:-1]:
            table = table.setdefault(section, {})
        table[keys[-1]] = parse_env_value(name, env[name], kind)


def parse_env_value(name: str, raw: str, kind: type) -> object:
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"expected true or false, got {raw!r}")
    if kind is int or kind is float:
        try:
            return kind(text)
        except ValueError as exc:
            raise ConfigError(name, f"expected a number, got {raw!r}") from exc
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def build_rules(doc: Mapping[str, Any]) -> Rules:
    check_keys("", doc, _TOP_KEYS)
    industry = get(doc, "industry", str, "ecommerce")
    if industry not in INDUSTRIES:
        raise ConfigError(
            "industry", f"unknown industry {industry!r}; one of {', '.join(INDUSTRIES)}"
        )
    base = preset(industry)

    session = table(doc, "session")
    check_keys("session", session, {"timeout_s", "allowed_lateness_s"})
    timeout_s = positive(session, "session.timeout_s", base.session_timeout_s)
    lateness_s = non_negative(
        session, "session.allowed_lateness_s", base.allowed_lateness_s
    )

    aliases = default_aliases()
    for alias, target in table(doc, "aliases").items():
        if not isinstance(target, str) or not target:
            raise ConfigError(f"aliases.{alias}", "must name an event type")
        aliases[alias] = target

    macro = table(doc, "macro")
    check_keys("macro", macro, {"name", "types"})
    macro_name = get(macro, "name", str, base.macro_name, "macro.name")
    macro_types = frozenset(
        str_list(macro, "types", "macro.types", sorted(base.macro_types))
    )
    if not macro_types:
        raise ConfigError("macro.types", "needs at least one event type")

    micro = build_micro(table(doc, "micro"), base.micro, macro_types)
    reachable = {m.name for m in micro} | {macro_name}

    funnels = base.funnels
    if "funnels" in doc:
        funnels = tuple(
            build_funnel(f"funnels[{i}]", item, reachable)
            for i, item in enumerate(array(doc, "funnels"))
        )
        if not funnels:
            raise ConfigError("funnels", "needs at least one funnel")
    else:
        funnels = tuple(
            Funnel(f.name, tuple(s for s in f.steps if s == VISIT or s in reachable))
            for f in funnels
        )

    sequences = base.sequences
    if "sequences" in doc:
        sequences = tuple(
            build_sequence(f"sequences[{i}]", item, reachable)
            for i, item in enumerate(array(doc, "sequences"))
        )
    else:
        sequences = tuple(
            s for s in sequences if all(step in reachable for step in s.steps)
        )
    _check_unique("sequences", [s.name for s in sequences])
    _check_unique("funnels", [f.name for f in funnels])

    intent = table(doc, "intent")
    check_keys("intent", intent, {"max", "weights"})
    weights = dict(base.intent_weights)
    for name, weight in table(intent, "weights", "intent.weights").items():
        key = f"intent.weights.{name}"
        if name not in reachable:
            raise ConfigError(key, "is not a micro conversion")
        weights[name] = number(weight, key)
    intent_max = positive(intent, "intent.max", base.intent_max)

    return replace(
        base,
        macro_name=macro_name,
        macro_types=macro_types,
        micro=micro,
        funnels=funnels,
        sequences=sequences,
        intent_weights={k: w for k, w in weights.items() if k in reachable},
        intent_max=intent_max,
        session_timeout_s=timeout_s,
        allowed_lateness_s=lateness_s,
        aliases=aliases,
        include_contact=get(doc, "include_contact", bool, False),
    )


def build_micro(
    section: Mapping[str, Any],
    defaults: tuple[MicroConversion, ...],
    macro_types: frozenset[str],
) -> tuple[MicroConversion, ...]:
    by_name = {m.name: m for m in defaults}
    for name, spec in section.items():
        key = f"micro.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(key, "must be a table")
        check_keys(key, spec, {"enabled", "conditions"})
        if not get(spec, "enabled", bool, True, f"{key}.enabled"):
            by_name.pop(name, None)
            continue
        if "conditions" not in spec:
            if name not in by_name:
                raise ConfigError(f"{key}.conditions", "is required for a new name")
            continue
        items = array(spec, "conditions", f"{key}.conditions")
        if not items:
            raise ConfigError(f"{key}.conditions", "needs at least one condition")
        conditions = tuple(
            build_condition(f"{key}.conditions[{i}]", item)
            for i, item in enumerate(items)
        )
        by_name[name] = MicroConversion(name, conditions)

    # The macro event never doubles as a micro conversion on the way to itself.
    result = []
    for micro in by_name.values():
        kept = tuple(c for c in micro.conditions if c.type not in macro_types)
        if kept:
            result.append(MicroConversion(micro.name, kept))
    return tuple(result)


def build_condition(key: str, item: object) -> Condition:
    if not isinstance(item, dict):
        raise ConfigError(key, "must be a table")
    check_keys(key, item, _CONDITION_KEYS)
    type_ = get(item, "type", str, None, f"{key}.type")
    if not type_:
        raise ConfigError(f"{key}.type", "is required")
    prop = get(item, "property", str, None, f"{key}.property")
    at_least = item.get("at_least")
    equals = item.get("equals")
    if at_least is not None:
        at_least = number(at_least, f"{key}.at_least")
    if equals is not None and not isinstance(equals, str | int | float | bool):
        raise ConfigError(f"{key}.equals", "must be a string, number or boolean")
    if (at_least is not None or equals is not None) and prop is None:
        raise ConfigError(f"{key}.property", "is required with at_least or equals")
    if at_least is not None and equals is not None:
        raise ConfigError(key, "at_least and equals cannot be combined")
    if prop is not None and at_least is None and equals is None:
        raise ConfigError(key, "property needs at_least or equals")
    count = get(item, "count", int, 1, f"{key}.count")
    if count < 1:
        raise ConfigError(f"{key}.count", "must be 1 or more")
    return Condition(type_, prop, at_least, equals, count)


def build_funnel(key: str, item: object, reachable: set[str]) -> Funnel:
    if not isinstance(item, dict):
        raise ConfigError(key, "must be a table")
    check_keys(key, item, {"name", "steps"})
    name = get(item, "name", str, None, f"{key}.name")
    if not name:
        raise ConfigError(f"{key}.name", "is required")
    steps = str_list(item, "steps", f"{key}.steps", None)
    if len(steps) < 2:
        raise ConfigError(f"{key}.steps", "needs at least two steps")
    for i, step in enumerate(steps):
        if step != VISIT and step not in reachable:
            raise ConfigError(
                f"{key}.steps[{i}]", f"{step!r} is not visit, a micro or the macro"
            )
    _check_unique(f"{key}.steps", steps)
    return Funnel(name, tuple(steps))


def build_sequence(key: str, item: object, reachable: set[str]) -> Sequence:
    if not isinstance(item, dict):
        raise ConfigError(key, "must be a table")
    check_keys(key, item, {"name", "steps", "within_s"})
    name = get(item, "name", str, None, f"{key}.name")
    if not name:
        raise ConfigError(f"{key}.name", "is required")
    steps = str_list(item, "steps", f"{key}.steps", None)
    if len(steps) < 2:
        raise ConfigError(f"{key}.steps", "needs at least two steps")
    for i, step in enumerate(steps):
        if step not in reachable:
            raise ConfigError(f"{key}.steps[{i}]", f"{step!r} is not a conversion")
    _check_unique(f"{key}.steps", steps)
    within_s = positive(item, f"{key}.within_s", 1800.0)
    return Sequence(name, tuple(steps), within_s)


# -- small typed readers; each error names the key's full path ------------------


def check_keys(where: str, section: Mapping[str, Any], allowed: set[str]) -> None:
    for name in section:
        if name not in allowed:
            key = f"{where}.{name}" if where else name
            raise ConfigError(key, f"unknown key; expected one of {sorted(allowed)}")


def get(
    section: Mapping[str, Any],
    name: str,
    kind: type,
    default: Any,
    key: str | None = None,
) -> Any:
    value = section.get(name, default)
    if value is None:
        return None
    # bool is an int in Python; a config `count = true` is still a mistake.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(key or name, "must be an integer")
    if not isinstance(value, kind):
        raise ConfigError(key or name, f"must be a {kind.__name__}")
    return value


def number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, "must be a number")
    if not math.isfinite(value):
        raise ConfigError(key, "must be finite")
    return float(value)


def positive(section: Mapping[str, Any], dotted: str, default: float) -> float:
    name = dotted.rsplit(".", 1)[-1]
    value = number(section.get(name, default), dotted)
    if value <= 0:
        raise ConfigError(dotted, "must be greater than 0")
    return value


def non_negative(section: Mapping[str, Any], dotted: str, default: float) -> float:
    name = dotted.rsplit(".", 1)[-1]
    value = number(section.get(name, default), dotted)
    if value < 0:
        raise ConfigError(dotted, "must be 0 or more")
    return value


def table(
    section: Mapping[str, Any], name: str, key: str | None = None
) -> dict[str, Any]:
    value = section.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(key or name, "must be a table")
    return value


def array(section: Mapping[str, Any], name: str, key: str | None = None) -> list[Any]:
    value = section.get(name, [])
    if not isinstance(value, list):
        raise ConfigError(key or name, "must be an array")
    return value


def str_list(
    section: Mapping[str, Any], name: str, key: str, default: list[str] | None
) -> list[str]:
    if name not in section:
        if default is None:
            raise ConfigError(key, "is required")
        return list(default)
    value = section[name]
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ConfigError(key, "must be an array of names")
    return list(value)


def _check_unique(key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(key, f"{name!r} appears twice")
        seen.add(name)
