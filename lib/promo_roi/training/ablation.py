"""Ablations: a model trained again with some training settings changed, named by what it changed.

The decision benchmark (``benchmarks/bench_decisions.py --ablation``) and the rolling-origin yardstick
(``jobs/evaluate.py --ablation``) take the same argument, comma-separated ``key=value`` settings of the
training section (``text_input=none``), and name the ablated model ``<model> [<settings>]``. The settings go
through the configuration's own validation as ``training.<key>=<value>`` overrides.
"""

from __future__ import annotations

from typing import Sequence


def ablation_settings(argument: str) -> list[str]:
    """The ``key=value`` settings of one ``--ablation`` argument."""
    return [s.strip() for s in argument.split(",") if s.strip()]


def ablation_overrides(settings: Sequence[str]) -> list[str]:
    """The settings as configuration overrides of the training section."""
    return [f"training.{s}" for s in settings]


def ablation_label(model: str, settings: Sequence[str]) -> str:
    """The name of ``model`` trained with ``settings`` changed."""
    return f"{model} [{', '.join(settings)}]"


def is_ablation_of(name: str, model: str) -> bool:
    """Whether ``name`` is an :func:`ablation_label` of ``model``."""
    return name.startswith(f"{model} [")
