"""MLflow: the tracking store, the model as a pyfunc, registration and the champion alias.

The registered model is an MLflow pyfunc whose artifacts are one directory
(weights, model spec, feature encoder, tokenizer; see
:func:`promo_roi.training.model.save_model_dir`), so scoring loads
``models:/<name>@champion`` and calls ``predict`` on a pandas frame of feature
columns + ``campaign_text``. It needs ``promo_roi`` importable (the editable
install here, the wheel on a cluster).

The alias ``champion`` moves to a new version only when the new model beats the
current champion on the validation metric, both computed now on the same
validation campaigns (the champion is re-scored, never compared by a number
logged on other data), and only when the new model passed its refutation
checks. Training compares the two by their PAIRED bootstrap difference (the
same resamples of campaigns, then households, for both): the candidate
replaces the champion only when the whole interval of the difference is above
0 (:class:`PairedComparison`); a difference inside the noise keeps the
champion. The comparison is logged to the run either way. The promotion itself
is a compare-and-set on ``gold.model_champion``
(:mod:`promo_roi.training.champion_ledger`): of two concurrent trainings that
both beat the old champion, one is promoted and the other says it lost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import pandas as pd

from promo_roi.mlflow_io import MlflowStore

log = logging.getLogger(__name__)

try:  # mlflow is a dependency; the base class only matters when it is installed
    import mlflow.pyfunc as _pyfunc

    _PythonModel = _pyfunc.PythonModel
except ImportError:  # pragma: no cover
    _PythonModel = object


class HouseholdResponseModel(_PythonModel):
    """pyfunc wrapper: pandas features + campaign_text in, expected outcomes per arm out."""

    def load_context(self, context: Any) -> None:
        from promo_roi.training.model import load_calibration, load_model_dir

        model_dir = Path(context.artifacts["model_dir"])
        self.network, self.feature_encoder, self.tokenizer, self.spec = load_model_dir(model_dir)
        # How scoring turns raw uplift into effects it can forecast with (None: trained before calibration).
        self.calibration = load_calibration(model_dir)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from promo_roi.training.model import predict_frame

        return predict_frame(self.network, self.feature_encoder, self.tokenizer, model_input,
                             self.spec.max_text_tokens)


# What the pyfunc imports when it loads and predicts (promo_roi itself comes from the
# editable install here, the --py-files zip on a cluster).
MODEL_DISTRIBUTIONS = ("torch", "transformers", "tokenizers", "numpy", "pandas", "pyarrow", "mlflow")


def model_requirements() -> list[str]:
    """The pyfunc's pip requirements, pinned to the versions installed (those of requirements.lock).

    Given explicitly because MLflow would otherwise infer them by loading the
    model in a subprocess (torch, transformers and MiniLM: tens of seconds of
    every training, and a guess instead of the lock's pins).
    """
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


def log_and_register(model_dir: Path, input_example: pd.DataFrame, output_example: pd.DataFrame,
                     registered_model: str) -> str:
    """Logs the pyfunc (with signature) to the active run and registers it; returns the version.

    Fluent only in MLflow: call it inside ``MlflowStore.fluent()`` and the training run."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, output_example)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=HouseholdResponseModel(),
        artifacts={"model_dir": str(model_dir)},
        signature=signature,
        input_example=input_example.head(5),
        pip_requirements=model_requirements(),
        registered_model_name=registered_model,
    )
    version = str(info.registered_model_version)
    log.info("registered %s version %s (run %s)", registered_model, version, info.run_id)
    return version


@dataclass(frozen=True)
class PairedComparison:
    """Candidate minus champion on the same validation rows and the same bootstrap draws."""

    champion_metric: float
    difference: float
    ci_low: float
    ci_high: float
    share_better: float  # share of draws where the candidate wins


@dataclass(frozen=True)
class ChampionDecision:
    promoted: bool
    reason: str
    candidate_version: str
    candidate_metric: float
    champion_version: str | None
    champion_metric: float | None
    metric_name: str
    refutations_passed: bool
    difference_ci_low: float | None = None
    difference_ci_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_champion(
    candidate_metric: float,
    champion: float | PairedComparison | None,
    refutations_passed: bool,
) -> tuple[bool, str]:
    """Pure rule: promote when the refutations passed and the candidate beats the champion.

    ``champion`` is the champion's metric (the candidate must be higher) or a
    :class:`PairedComparison` (the interval of the paired difference must lie
    above 0); None when there is no champion yet.
    """
    import math

    if not refutations_passed:
        return False, ("the gating refutation failed (its uplift ranks the fake window's effects): "
                       "the candidate's uplift is not trusted")
    if candidate_metric is None or math.isnan(candidate_metric):
        return False, "candidate has no validation metric"
    if isinstance(champion, PairedComparison):
        band = f"{champion.difference:.6g} [{champion.ci_low:.6g}, {champion.ci_high:.6g}]"
        if math.isnan(champion.champion_metric):
            return True, "no champion with a validation metric yet"
        if champion.ci_low > 0:
            return True, f"candidate - champion = {band}: better on every part of the interval"
        return False, f"candidate - champion = {band}: not shown to be better (interval reaches 0 or below)"
    if champion is None or math.isnan(champion):
        return True, "no champion with a validation metric yet"
    if candidate_metric > champion:
        return True, f"candidate {candidate_metric:.6g} > champion {champion:.6g}"
    return False, f"candidate {candidate_metric:.6g} <= champion {champion:.6g}"


class ChampionClaim(Protocol):
    """Where the champion is recorded (:class:`promo_roi.training.champion_ledger.ChampionLedger`)."""

    def current(self) -> str | None: ...

    def claim(self, expected: str | None, candidate: str, reason: str) -> bool: ...


def _recorded_champion(store: MlflowStore, registered_model: str, alias: str,
                       ledger: ChampionClaim | None) -> str | None:
    """The champion to compare against: the ledger's when it has one (the alias put back on it when they
    differ), else the alias's."""
    aliased = store.alias_version(registered_model, alias)
    recorded = ledger.current() if ledger is not None else None
    if recorded is None:
        return aliased
    if recorded != aliased:
        log.warning("alias %s of %s points to version %s, the recorded champion is %s: moving the alias back",
                    alias, registered_model, aliased, recorded)
        store.set_alias(registered_model, alias, recorded)
    return recorded


def promote_if_better(
    store: MlflowStore,
    registered_model: str,
    alias: str,
    candidate_version: str,
    candidate_metric: float,
    metric_name: str,
    champion_metric_fn: Callable[[Any], float | PairedComparison],
    refutations_passed: bool,
    ledger: ChampionClaim | None = None,
) -> ChampionDecision:
    """Re-scores the current champion with ``champion_metric_fn(pyfunc)`` (its metric, or its paired
    comparison with the candidate), decides, claims the promotion in ``ledger`` (compare-and-set: lost when
    another run promoted since this one read the champion), then moves the alias.

    The decision is logged to the active run (params and a JSON artifact): call it inside
    ``store.fluent()`` and the training run.
    """
    import mlflow

    champion_version = _recorded_champion(store, registered_model, alias, ledger)
    measured: float | PairedComparison | None = None
    if champion_version is not None and champion_version != candidate_version:
        measured = champion_metric_fn(store.load_version(registered_model, champion_version))
        measured = measured if isinstance(measured, PairedComparison) else float(measured)
    promoted, reason = decide_champion(candidate_metric, measured, refutations_passed)
    if promoted and ledger is not None and not ledger.claim(champion_version, candidate_version, reason):
        promoted, reason = False, (
            f"{reason}; but another run promoted version {ledger.current()} while this one compared with "
            f"version {champion_version}: not promoted (retrain to compare with the new champion)")
    if promoted:
        store.set_alias(registered_model, alias, candidate_version)
    paired = measured if isinstance(measured, PairedComparison) else None
    champion_metric = paired.champion_metric if paired else measured
    decision = ChampionDecision(promoted, reason, candidate_version, candidate_metric, champion_version,
                                champion_metric, metric_name, refutations_passed,
                                paired.ci_low if paired else None, paired.ci_high if paired else None)
    mlflow.log_dict(decision.to_dict(), "champion_decision.json")
    mlflow.set_tags({"champion.promoted": str(promoted), "champion.reason": reason})
    if champion_metric is not None:
        mlflow.log_metric(f"champion_{metric_name}", champion_metric)
    log.info("champion decision for %s v%s: %s (%s)", registered_model, candidate_version,
             "promoted" if promoted else "kept the current champion", reason)
    return decision


def describe(decision: ChampionDecision) -> str:
    return json.dumps(decision.to_dict(), sort_keys=True)
