"""One scenario of the decision benchmark, end to end, on the real nightly chain.

generate the scenario (:mod:`promo_roi.synthetic`) -> ingest -> build_features
-> train -> score, each into the scenario's own warehouse and MLflow store,
then the published decisions and the baselines' decisions for the same night
are held against the scenario's truth (:mod:`promo_roi.synthetic.scorecard`).

The champion gate (refutation checks) may refuse the scenario's only trained
model. The benchmark then scores with that model anyway, because the question
is how good the model's decisions are, and it says so in the result's
``champion_gate``; in production such a night would have published nothing.

An ablation trains a second network on the same night with some training
settings changed (``text_input=none``: the network without any text, which
says what the transformer adds) into its own registered model, and judges it
as the champion's own network is judged (``transformer_uplift``: its own
outputs, valued by its own calibration, priced at the champion's published
costs, so the two plans differ only by the network), paired with it.

``benchmarks/bench_decisions.py`` runs several scenarios on the full data; the
test suite runs the ``tiny`` scenario on the small fixture.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from promo_roi.config import AppConfig
from promo_roi.observability import stage
from promo_roi.synthetic.scenarios import Scenario
from promo_roi.validation import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScenarioRun:
    scenario: str
    run_date: dt.date
    rows: list[dict]  # one scorecard row per model, the champion first
    champion_version: str
    champion_gate: str
    seconds: dict[str, float]
    truth: dict  # scenario.json's content (seed, counts)
    chosen: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)  # per model: the plan's pairs
    # Paired differences of true plan profit (scorecard.paired_profit_difference), one per comparison_pairs pair.
    comparisons: list[dict] = dataclasses.field(default_factory=list)


def ablation_label(settings: Sequence[str]) -> str:
    """The row name of the network trained with ``settings`` ("key=value" of the training section) changed."""
    from promo_roi.synthetic.decisions import NETWORK_BASELINE
    from promo_roi.training import ablation

    return ablation.ablation_label(NETWORK_BASELINE, settings)


def comparison_pairs(models: list[str]) -> list[tuple[str, str]]:
    """Which plans the benchmark compares paired, as (a, b): every what-if ("<model> + ...") against its model's
    own plan, then the champion (the first model) against each baseline's plan, then the champion's own network
    against each ablation of it (":func:`ablation_label`"), then the DR-learner against the T-learner (the
    effect learned directly against two arms subtracted; both priced alike)."""
    from promo_roi.synthetic.decisions import DR_LEARNER, NETWORK_BASELINE, T_LEARNER
    from promo_roi.training.ablation import is_ablation_of

    bases = [m for m in models if " + " not in m]
    what_ifs = [(m, base) for m in models if " + " in m for base in bases if m.startswith(base + " + ")]
    ablations = [(NETWORK_BASELINE, m) for m in bases if is_ablation_of(m, NETWORK_BASELINE)]
    direct = [(DR_LEARNER, T_LEARNER)] if {DR_LEARNER, T_LEARNER} <= set(bases) else []
    return what_ifs + [(bases[0], baseline) for baseline in bases[1:]] + ablations + direct


def paired_comparisons(decided: dict, truth: pd.DataFrame, economics, campaigns: list[int], seed: int) -> list[dict]:
    """:func:`comparison_pairs` of ``decided`` (model -> Decisions), each plan's true profit per campaign minus the
    other's over the night's ``campaigns``, with its interval over resampled campaigns."""
    from promo_roi.synthetic.scorecard import campaign_true_profit, paired_profit_difference, true_pair_economics

    truth_economics = true_pair_economics(truth[truth["campaign_id"].isin(campaigns)], economics)
    profit = {name: campaign_true_profit(d.chosen, truth_economics) for name, d in decided.items()}
    return [{"a": a, "b": b, **paired_profit_difference(profit[a], profit[b], campaigns, seed=seed)}
            for a, b in comparison_pairs(list(decided))]


def ablation_config(config: AppConfig, label: str) -> AppConfig:
    """The scenario's configuration for an ablation's training: its own registered model and experiment (so the
    champion's are never touched), everything else as ``config`` (already the ablated settings)."""
    import re

    training, _, _ = config.require_training()
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    return dataclasses.replace(config, training=dataclasses.replace(
        training, registered_model=f"{training.registered_model}__{slug}", experiment=f"{training.experiment}-{slug}"))


def _train_ablations(spark, ablations: Mapping[str, AppConfig], root: Path, scenario: Scenario, run_date: dt.date,
                     timed) -> dict[str, str]:
    """Trains each ablation on the night's data (the scenario's warehouse, already ingested and featured);
    label -> the artifact location of the version it registered, whatever its gate said."""
    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.training.pipeline import train

    uris = {}
    for label, ablated_base in ablations.items():
        config = ablation_config(scenario_config(ablated_base, root, scenario), label)
        trained = timed(f"train {label}", lambda config=config: train(spark, config, run_date))
        training, _, mlflow_config = config.require_training()
        uris[label] = MlflowStore.of(mlflow_config).version_artifacts(training.registered_model, trained.model_version)
        log.info("benchmark %s: %s trained as %s version %s (gate: %s)", scenario.name, label,
                 training.registered_model, trained.model_version, trained.champion_reason)
    return uris


def scenario_config(base: AppConfig, root: Path, scenario: Scenario) -> AppConfig:
    """``base`` with every place it writes moved under ``root`` and the scenario's coupon face value as the
    cost per redemption. A ``root`` inside the configured warehouse is refused: a benchmark never writes into
    the main warehouse."""
    root = root.resolve()
    main = Path(base.warehouse.root.removeprefix("file:")).resolve()
    if root == main or main in root.parents or root in main.parents:
        raise InputError(f"benchmark directory {root} overlaps the configured warehouse {main}: "
                         "give the benchmark a directory of its own")
    training, evaluation, mlflow = base.require_training()
    return dataclasses.replace(
        base,
        warehouse=dataclasses.replace(base.warehouse, root=str(root / "warehouse")),
        source=dataclasses.replace(base.source, path=str(root / "source")),
        training=dataclasses.replace(training, checkpoint_dir=str(root / "checkpoints"),
                                     petastorm_cache_dir=str(root / "petastorm")),
        mlflow=dataclasses.replace(mlflow, tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                                   artifact_root=str(root / "mlartifacts")),
        scoring=dataclasses.replace(base.scoring, redemption_cost=scenario.face_value),
        reports=dataclasses.replace(base.reports, root=str(root / "reports")),
    )


def _use_candidate_if_refused(config: AppConfig, result) -> str:
    """The gate's verdict; when it refused and no champion exists, the candidate is made champion so that the
    night can be scored (the result says so)."""
    from promo_roi.mlflow_io import MlflowStore

    training, _, mlflow_config = config.require_training()
    if result.promoted:
        return f"promoted: {result.champion_reason}"
    store = MlflowStore.of(mlflow_config)
    if store.alias_version(training.registered_model, training.champion_alias) is None:
        store.set_alias(training.registered_model, training.champion_alias, result.model_version)
        return f"REFUSED ({result.champion_reason}); scored with the refused candidate for the benchmark"
    return f"not promoted ({result.champion_reason}); the earlier champion scored"


def _economics(spark, config: AppConfig):
    from promo_roi import delta_io
    from promo_roi.synthetic.scorecard import Economics
    from promo_roi.tables import CAMPAIGN_PLANS

    plans = delta_io.read_table(spark, CAMPAIGN_PLANS, config.warehouse).select(
        "campaign_id", "contact_cost").toPandas()
    return Economics(config.scoring.gross_margin,
                     dict(zip(plans["campaign_id"].astype(int), plans["contact_cost"].astype(float))))


def other_pricing(calibration):
    """The champion's calibration with the redemption model scoring did not use (ratio <-> shrunk), or None when
    the model carries only one (calibrated before the shrunk count existed)."""
    other = "ratio" if calibration.redemption_model == "shrunk" else "shrunk"
    if other == "shrunk" and calibration.redemption_count_shrunk is None:
        log.info("benchmark: the champion carries no shrunk redemption count; no pricing what-if")
        return None
    return dataclasses.replace(calibration, redemption_model=other)


def run_scenario(spark, base: AppConfig, scenario: Scenario, source_dir: str | Path, root: Path,
                 run_date: dt.date, ablations: Mapping[str, AppConfig] | None = None) -> ScenarioRun:
    """Generates ``scenario`` from ``source_dir`` under ``root``, runs the nightly chain for ``run_date`` and
    scores the champion, the baselines and the ``ablations`` (label -> ``base`` with its training settings
    changed, :func:`ablation_label`) against the truth."""
    from promo_roi.features import build_features
    from promo_roi.ingest import run_ingest
    from promo_roi.scoring.job import champion, score
    from promo_roi.synthetic.decisions import (
        baseline_decisions,
        published_decisions,
        repriced_published_decisions,
        risk_aware_published_decisions,
    )
    from promo_roi.synthetic.io import generate_benchmark
    from promo_roi.synthetic.scorecard import scorecard
    from promo_roi.training.pipeline import train

    config = scenario_config(base, root, scenario)
    seconds: dict[str, float] = {}

    def timed(name: str, fn):
        started = time.monotonic()
        with stage(log, f"benchmark.{name}[{scenario.name}]"):
            out = fn()
        seconds[name] = round(time.monotonic() - started, 1)
        return out

    info = timed("generate", lambda: generate_benchmark(source_dir, root / "source", scenario, base.source))
    timed("ingest", lambda: run_ingest(spark, config, config.source.path))
    timed("features", lambda: build_features(spark, config, run_date))
    trained = timed("train", lambda: train(spark, config, run_date))
    gate = _use_candidate_if_refused(config, trained)
    timed("score", lambda: score(spark, config, run_date))
    model = champion(spark, config)
    published = published_decisions(spark, config, run_date)
    # Named by what it valued households by (evaluation.ranking chose it on the validation campaigns).
    champion_name = f"champion (v{model.version}, valued by {model.calibration.value_score})"
    decided = {champion_name: published}
    # The published plan is on expected profit; the risk-aware plan (planning.risk: quantile) is judged beside
    # it, for the champion and every baseline, at the configured quantile.
    risk_quantile = config.planning.risk_quantile if config.planning.risk == "expected" else None
    if risk_quantile is not None:
        decided[f"{champion_name} + risk q={risk_quantile:g}"] = timed("risk_plan", lambda: (
            risk_aware_published_decisions(spark, config, run_date, published, risk_quantile, model)))
    # And priced by the other redemption model (scoring.redemption_model): the same network, values and forecasts,
    # so the two pricings are compared on one night, for the champion and every baseline (a paired comparison;
    # two benchmark runs may not train the same champion).
    repriced_by = other_pricing(model.calibration)
    if repriced_by is not None:
        decided[f"{champion_name} + {repriced_by.redemption_model} redemptions"] = timed("repriced_plan", lambda: (
            repriced_published_decisions(spark, config, run_date, published, model, repriced_by)))
    networks = _train_ablations(spark, ablations or {}, root, scenario, run_date, timed)
    baselines = timed("baselines", lambda: baseline_decisions(spark, config, run_date, model.uri,
                                                              seed=scenario.seed, risk_quantile=risk_quantile,
                                                              repriced_by=repriced_by, ablations=networks))
    truth = pd.read_parquet(root / "source" / "truth_household_campaign.parquet")
    economics = _economics(spark, config)
    everything = {**decided, **baselines}
    comparisons = paired_comparisons(everything, truth, economics,
                                     sorted(int(c) for c in published.predicted["campaign_id"].unique()), scenario.seed)
    rows = []
    for name, decisions in everything.items():
        rows.append({"scenario": scenario.name, **scorecard(
            name, decisions.predicted, decisions.forecast, decisions.audience, decisions.chosen,
            decisions.planned_cost, truth, economics, config.planning.household_cap)})
    log.info("benchmark %s: %s", scenario.name, "; ".join(
        f"{r['model']}: spearman {r['spearman_mean']:.3f}, wape {r['forecast_wape']:.3f}, "
        f"coverage {r['interval_coverage']:.2f}, oracle share {r['oracle_share']:.3f}" for r in rows))
    return ScenarioRun(scenario.name, run_date, rows, model.version, gate, seconds, info,
                       {name: d.chosen for name, d in everything.items()}, comparisons)
