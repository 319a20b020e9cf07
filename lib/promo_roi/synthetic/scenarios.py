"""Named benchmark scenarios (conf/scenarios.yaml), loaded into typed, checked objects.

A scenario is every knob of the generator plus its seed. The loader refuses,
naming the scenario and the key, anything it would otherwise have to guess:
an unknown or missing key, a value of the wrong type or outside its range.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from promo_roi.validation import InputError


class ScenarioError(InputError):
    """The scenario file, one of its scenarios or the scenario asked for cannot be used.

    An :class:`InputError` (a ``ValueError``) so that jobs map it to exit code 2.
    """


@dataclass(frozen=True)
class Scenario:
    """One benchmark world. Every field is required in the YAML."""

    name: str
    description: str
    seed: int
    # 0: targeting ignores the covariates (random); 1: propensity AUC about 0.9.
    selectivity: float
    # Mean expected incremental coupon-product lines per household at |m_c| = 1.
    effect_scale: float
    # Sigma of the lognormal spread of |m_c| between campaigns (mean |m_c| = 1).
    effect_spread: float
    # Standard deviation of the log effect rate explained by the covariates.
    heterogeneity: float
    # Standard deviation of the unobserved household effect u_h (log scale).
    noise_sd: float
    share_null_campaigns: float
    share_negative_campaigns: float
    # Probability that an incremental line is bought with the coupon.
    incremental_redemption_rate: float
    # Probability, for an average coupon-prone household, that a line it would
    # have bought anyway is bought with the coupon (pure cost).
    baseline_redemption_rate: float
    # Coupon face value, in sales_value currency per redeemed line.
    face_value: float
    # Length of the covariates' pre-period before each campaign's start.
    pre_period_weeks: int
    # Smallest synthetic target list (expected size), whatever the real one was.
    min_audience: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_TYPES: dict[str, type] = {"str": str, "int": int, "float": float}
# The YAML keys and their types (annotations are strings under __future__.annotations).
_FIELDS: dict[str, type] = {f.name: _TYPES[str(f.type)] for f in dataclasses.fields(Scenario) if f.name != "name"}

_UNIT_INTERVAL = ("selectivity", "share_null_campaigns", "share_negative_campaigns",
                  "incremental_redemption_rate", "baseline_redemption_rate")
_NON_NEGATIVE = ("effect_scale", "effect_spread", "heterogeneity", "noise_sd")
_POSITIVE = ("face_value", "pre_period_weeks", "min_audience")


def _typed(name: str, key: str, value: Any) -> Any:
    kind = _FIELDS[key]
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ScenarioError(f"scenario {name!r}: {key} must be a finite number, got {value!r}")
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ScenarioError(f"scenario {name!r}: {key} must be {kind.__name__}, got {value!r}")


def _check_ranges(s: Scenario) -> None:
    for key in _UNIT_INTERVAL:
        if not 0.0 <= getattr(s, key) <= 1.0:
            raise ScenarioError(f"scenario {s.name!r}: {key} must lie in [0, 1], got {getattr(s, key)!r}")
    for key in _NON_NEGATIVE:
        if getattr(s, key) < 0:
            raise ScenarioError(f"scenario {s.name!r}: {key} must be >= 0, got {getattr(s, key)!r}")
    for key in _POSITIVE:
        if getattr(s, key) <= 0:
            raise ScenarioError(f"scenario {s.name!r}: {key} must be > 0, got {getattr(s, key)!r}")
    if s.seed < 0:
        raise ScenarioError(f"scenario {s.name!r}: seed must be >= 0, got {s.seed!r}")
    total = s.share_null_campaigns + s.share_negative_campaigns
    if total > 1.0:
        raise ScenarioError(
            f"scenario {s.name!r}: share_null_campaigns + share_negative_campaigns must be <= 1, got {total:g}")


def parse_scenario(name: str, raw: Any) -> Scenario:
    """One scenario from its YAML mapping; raises ScenarioError naming the key."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"scenario {name!r}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - set(_FIELDS))
    if unknown:
        raise ScenarioError(f"scenario {name!r}: unknown key(s) {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(_FIELDS))})")
    missing = [k for k in _FIELDS if k not in raw]
    if missing:
        raise ScenarioError(f"scenario {name!r}: missing key(s) {', '.join(missing)}")
    scenario = Scenario(name=name, **{k: _typed(name, k, raw[k]) for k in _FIELDS})
    _check_ranges(scenario)
    return scenario


def parse_scenarios(tree: Any, origin: str = "scenarios") -> dict[str, Scenario]:
    """``{"scenarios": {name: {...}}}`` -> scenarios by name."""
    if not isinstance(tree, Mapping) or set(tree) != {"scenarios"}:
        raise ScenarioError(f"{origin}: expected one top-level key 'scenarios', "
                            f"got {sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__}")
    body = tree["scenarios"]
    if not isinstance(body, Mapping) or not body:
        raise ScenarioError(f"{origin}: 'scenarios' must be a non-empty mapping of name -> settings")
    return {str(name): parse_scenario(str(name), raw) for name, raw in body.items()}


def load_scenarios(path: str | os.PathLike[str] | Any) -> dict[str, Scenario]:
    """Reads and checks every scenario of a YAML file (a path or a resources Traversable)."""
    source = Path(path) if isinstance(path, (str, os.PathLike)) else path
    try:
        text = source.read_text()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ScenarioError(f"scenario file not found: {source}") from exc
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc
    return parse_scenarios(tree, str(source))


def select_scenario(scenarios: Mapping[str, Scenario], name: str) -> Scenario:
    """The scenario called ``name``; an unknown name lists the known ones."""
    if name not in scenarios:
        raise ScenarioError(f"unknown scenario {name!r}; known scenarios: {', '.join(sorted(scenarios))}")
    return scenarios[name]
