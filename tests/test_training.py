"""The training step: split rules, encoding, the network, DDP resume, the champion gate,
and one end-to-end run on the fixture through petastorm + TorchDistributor with 2 processes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import join_as_single_rank, random_training_arrays
from promo_roi import delta_io
from promo_roi.tables import (
    MODEL_EVALUATION,
    POSITIVITY_DIAGNOSTICS,
    REFUTATION_CHECKS,
    SOURCE_TABLES,
    UPLIFT_CURVES,
    training_examples_spec,
)
from promo_roi.training.examples import NotEnoughCampaignsError, assign_splits
from promo_roi.training.model import FeatureEncoder, ModelSpec
from promo_roi.training.registry import decide_champion

AS_OF = dt.date(2017, 7, 1)
D = dt.date


# --- the time-based split ----------------------------------------------------------------


def test_splits_are_by_start_date_last_ones_held_out():
    campaigns = [(8, D(2017, 5, 8)), (1, D(2017, 3, 3)), (27, D(2017, 2, 8)), (5, D(2017, 4, 3)),
                 (2, D(2017, 3, 8)), (7, D(2017, 4, 24))]
    got = [(s.campaign_id, s.split) for s in assign_splits(campaigns, 1, 2, 3)]
    assert got == [(27, "train"), (1, "train"), (2, "train"), (5, "validation"), (7, "test"), (8, "test")]


def test_same_start_date_is_ordered_by_campaign_id():
    got = [(s.campaign_id, s.split) for s in assign_splits([(12, D(2017, 7, 12)), (11, D(2017, 7, 12)),
                                                            (9, D(2017, 5, 31))], 1, 1, 1)]
    assert got == [(9, "train"), (11, "validation"), (12, "test")]


def test_too_few_campaigns_is_refused_with_the_numbers():
    with pytest.raises(NotEnoughCampaignsError, match="2 fully observed campaign.*3 to train"):
        assign_splits([(1, D(2017, 3, 3)), (2, D(2017, 3, 8))], 1, 1, 3)


# --- feature encoding --------------------------------------------------------------------


def test_feature_encoder_hand_computed():
    enc = FeatureEncoder(
        numeric_columns=["spend", "days"], categorical_columns=["income"],
        means=[1.0, 0.0], stds=[2.0, 1.0], vocabularies={"income": ["high", "low"]},
        spend_scale={"coupon_product_spend": 1.0, "spend": 1.0},
    )
    frame = pd.DataFrame({"spend": [math.e - 1, -(math.e - 1)], "days": [None, 0.0],
                          "income": ["low", "never seen"]})
    out = enc.encode(frame)
    # signed log1p: e-1 -> 1, -(e-1) -> -1; standardised (x - 1) / 2 -> 0 and -1; missing -> 0.
    np.testing.assert_allclose(out["x_num"], [[0.0, 0.0], [-1.0, 0.0]], atol=1e-6)
    # vocabulary index + 1; unseen -> 0
    assert out["x_cat"].tolist() == [[2], [0]]
    assert enc.cardinalities() == [3]
    with pytest.raises(KeyError, match="income"):
        enc.encode(frame.drop(columns=["income"]))


def test_feature_encoder_codes_missing_unseen_and_numeric_categories():
    """A missing category is the string "unknown" (a training value here), a number is its text, unseen -> 0;
    numeric columns of any dtype, with missing and infinite values -> the mean (0)."""
    enc = FeatureEncoder(
        numeric_columns=["spend", "count"], categorical_columns=["income", "kids"],
        means=[0.0, 0.0], stds=[1.0, 1.0],
        vocabularies={"income": ["high", "unknown"], "kids": ["1", "2", "3+"]},
        spend_scale={"coupon_product_spend": 1.0, "spend": 1.0},
    )
    frame = pd.DataFrame({"spend": [0.0, -0.0, math.inf, None, math.e ** 2 - 1],
                          "count": np.array([0, 1, 2, 3, 4], dtype=np.int32),
                          "income": ["high", None, "low", "unknown", "high"],
                          "kids": pd.Series([2, 1, None, 7, 2], dtype="Int64")})
    out = enc.encode(frame)
    assert out["x_num"].dtype == np.float32 and out["x_cat"].dtype == np.int64
    np.testing.assert_allclose(out["x_num"][:, 0], [0.0, 0.0, 0.0, 0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(out["x_num"][:, 1], np.log1p([0, 1, 2, 3, 4]), atol=1e-6)
    assert out["x_cat"].tolist() == [[1, 2], [2, 1], [0, 0], [2, 0], [1, 2]]


# --- the network ---------------------------------------------------------------------------


def test_each_distinct_text_encoded_once_gives_the_per_row_result(tokenizer):
    import torch

    from promo_roi.training.model import build_network
    from promo_roi.training.text_encoder import TextBatcher

    torch.manual_seed(0)
    spec = ModelSpec(n_numeric=3, cardinalities=[4], hidden_dim=16, dropout=0.0, finetune="frozen")
    net = build_network(spec).eval()
    texts = ["type a campaign, 49 days. coupon departments: grocery.", "type b campaign, 32 days."]
    batcher = TextBatcher.from_texts(tokenizer, texts, 32)
    text_ids = torch.tensor([1, 0, 1, 1, 0])
    x_num, x_cat = torch.randn(5, 3), torch.tensor([[0], [1], [2], [3], [1]])
    index, ids, mask = batcher.select(text_ids)
    assert ids.shape[0] == 2  # two distinct texts in the batch, encoded once each
    with torch.no_grad():
        logit, arms = net(x_num, x_cat, index, ids, mask)
        for row in range(5):
            one = TextBatcher.from_texts(tokenizer, [texts[int(text_ids[row])]], 32)
            l1, a1 = net(x_num[row:row + 1], x_cat[row:row + 1], torch.tensor([0]), one.input_ids,
                         one.attention_mask)
            torch.testing.assert_close(logit[row:row + 1], l1, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(arms[row:row + 1], a1, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mode,trainable_encoder", [("frozen", 0), ("top_layers", 1), ("adapters", 1)])
def test_finetune_modes_choose_what_trains(mode, trainable_encoder):
    from promo_roi.training.model import build_network

    net = build_network(ModelSpec(n_numeric=2, cardinalities=[2], hidden_dim=8, finetune=mode, top_layers=1))
    enc = [n for n, p in net.encoder.named_parameters() if p.requires_grad]
    assert bool(enc) == bool(trainable_encoder)
    if mode == "top_layers":
        assert all(n.startswith("encoder.layer.5.") for n in enc)
    if mode == "adapters":
        assert all(".adapter" in n or ".dense.1." in n for n in enc)


def test_the_best_epoch_is_chosen_on_the_validation_outcome_loss_not_the_propensity_term():
    """Epoch 2 fits the response better and the target lists worse: the total loss would keep epoch 1."""
    from promo_roi.training.distributed import _Progress

    progress = _Progress()
    epochs = [
        {"epoch": 1, "validation_loss": 1.00, "validation_outcome_loss": 0.90, "validation_propensity_loss": 0.10},
        {"epoch": 2, "validation_loss": 1.05, "validation_outcome_loss": 0.80, "validation_propensity_loss": 0.25},
        {"epoch": 3, "validation_loss": 0.95, "validation_outcome_loss": 0.85, "validation_propensity_loss": 0.10},
    ]
    assert [progress.record_epoch(e) for e in epochs] == [True, True, False]
    assert progress.best == {"loss": 0.80, "epoch": 2} and progress.history == epochs
    without_validation = _Progress()
    assert [without_validation.record_epoch({"epoch": e, "train_loss": 1.0}) for e in (1, 2)] == [True, True]
    assert without_validation.best["epoch"] == 2


def test_two_trainings_on_the_same_batches_end_with_the_same_weights(tmp_path, monkeypatch):
    """Seeded initialisation, dropout and batch order: the trainer itself adds no randomness (the petastorm
    order is tests/test_training_loader.py's)."""
    import torch

    from promo_roi.training.distributed import ArrayBatches, WorkerParams, train_worker

    n = 96
    arrays = random_training_arrays(n)
    weights = []
    for run in ("first", "second"):
        join_as_single_rank(monkeypatch)
        train_worker(WorkerParams(
            model_spec=ModelSpec(n_numeric=3, cardinalities=[3], hidden_dim=8, finetune="top_layers",
                                 top_layers=1).to_dict(),
            texts=["type a campaign.", "type b campaign."], n_train_rows=n, batch_size=32, epochs=2,
            learning_rate=1e-3, encoder_learning_rate=1e-4, weight_decay=0.0, propensity_weight=1.0, seed=3,
            use_gpu=False, checkpoint_path=str(tmp_path / run / "last.pt"),
            final_weights_path=str(tmp_path / run / "final.pt"), batch_source=ArrayBatches(arrays),
        ))
        weights.append(torch.load(tmp_path / run / "final.pt", weights_only=True))
    assert weights[0].keys() == weights[1].keys()
    different = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert different == []


def test_an_ensemble_trained_in_one_launch_ends_with_each_member_s_weights_alone(tmp_path, monkeypatch):
    """train_members (what one TorchDistributor launch runs for a whole ensemble) trains each member as
    train_worker alone does: two seeds, the same weights to the bit and the same losses, and the two members
    differ from each other."""
    import torch

    from promo_roi.training.distributed import ArrayBatches, WorkerParams, train_members, train_worker

    n = 96
    arrays = random_training_arrays(n)

    def member(run: str, seed: int) -> WorkerParams:
        return WorkerParams(
            model_spec=ModelSpec(n_numeric=3, cardinalities=[3], hidden_dim=8, finetune="frozen").to_dict(),
            texts=["type a campaign.", "type b campaign."], n_train_rows=n, batch_size=32, epochs=2,
            learning_rate=1e-3, encoder_learning_rate=1e-5, weight_decay=0.0, propensity_weight=1.0, seed=seed,
            use_gpu=False, checkpoint_path=str(tmp_path / run / "last.pt"),
            final_weights_path=str(tmp_path / run / "final.pt"), batch_source=ArrayBatches(arrays))

    join_as_single_rank(monkeypatch)
    together = train_members([member("together_1", 3), member("together_2", 4)])
    alone = []
    for run, seed in (("alone_1", 3), ("alone_2", 4)):
        join_as_single_rank(monkeypatch)
        alone.append(train_worker(member(run, seed)))
    losses = lambda result: [{k: v for k, v in h.items() if "loss" in k} for h in result["history"]]  # noqa: E731
    assert [losses(r) for r in together] == [losses(r) for r in alone]
    weights = lambda run: torch.load(tmp_path / run / "final.pt", weights_only=True)  # noqa: E731
    for k in (1, 2):
        one, other = weights(f"together_{k}"), weights(f"alone_{k}")
        assert [name for name in one if not torch.equal(one[name], other[name])] == []
    first, second = weights("together_1"), weights("together_2")
    assert any(not torch.equal(first[name], second[name]) for name in first)


def test_held_out_rows_come_in_key_order_whatever_the_stored_order(spark):
    """The evaluation draws its folds and resamples by row position: the same rows stored in another order
    give the same frame."""
    from promo_roi.training.pipeline import _to_pandas

    rows = [(8, 2, 1.0, True), (7, 9, 0.0, False), (8, 1, 3.0, False), (7, 3, 2.0, True)]
    schema = "campaign_id long, household_id long, spend double, targeted boolean"
    one = _to_pandas(spark.createDataFrame(rows, schema))
    other = _to_pandas(spark.createDataFrame(list(reversed(rows)), schema).repartition(3))
    expected = pd.DataFrame({"campaign_id": [7, 7, 8, 8], "household_id": [3, 9, 1, 2],
                             "spend": [2.0, 0.0, 3.0, 1.0], "targeted": [1.0, 0.0, 0.0, 1.0]})
    pd.testing.assert_frame_equal(one, expected)
    pd.testing.assert_frame_equal(other, expected)


def test_a_killed_run_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    """Epoch 1 is checkpointed; a second start with 2 epochs trains only epoch 2."""
    from promo_roi.training.distributed import ArrayBatches, WorkerParams, train_worker

    n = 64
    arrays = random_training_arrays(n)
    arrays["outcomes"][:, 0] = arrays["outcomes"][:, 0] > 0.7
    join_as_single_rank(monkeypatch)
    params = WorkerParams(
        model_spec=ModelSpec(n_numeric=3, cardinalities=[3], hidden_dim=8, finetune="frozen").to_dict(),
        texts=["type a campaign.", "type b campaign."], n_train_rows=n, batch_size=32, epochs=1,
        learning_rate=1e-3, encoder_learning_rate=1e-5, weight_decay=0.0, propensity_weight=1.0, seed=3,
        use_gpu=False, checkpoint_path=str(tmp_path / "last.pt"), final_weights_path=str(tmp_path / "final.pt"),
        batch_source=ArrayBatches(arrays),
    )
    first = train_worker(params)
    assert [h["epoch"] for h in first["history"]] == [1]
    assert (tmp_path / "last.pt").exists() and (tmp_path / "final.pt").exists()
    monkeypatch.setenv("MASTER_PORT", "0")  # a new group: a port of the system's choosing
    second = train_worker(dataclasses.replace(params, epochs=2))
    assert [h["epoch"] for h in second["history"]] == [1, 2]
    # Epoch 1 came from the checkpoint, not from training it again.
    assert second["history"][0] == first["history"][0]


def test_the_checkpoint_key_follows_the_examples_content_not_their_table_version(spark, app_config):
    """Every training rewrites its examples slice (a new Delta version), so the key reads the rows themselves: the
    same rows in another order and partitioning give the same key, one value changed or one row less another."""
    from promo_roi.training.checkpoints import examples_fingerprint, run_key

    rows = [(1, 10, "train", 2.5, [1.0, 2.0]), (1, 11, "test", None, [0.0]), (2, 10, "validation", -0.0, [])]
    schema = "campaign_id int, household_id int, split string, spend double, x array<double>"
    same = examples_fingerprint(spark.createDataFrame(rows, schema))
    assert examples_fingerprint(spark.createDataFrame(rows[::-1], schema).repartition(3)) == same
    changed = [rows[0], (1, 11, "test", 0.01, [0.0]), rows[2]]
    assert examples_fingerprint(spark.createDataFrame(changed, schema)) != same
    assert examples_fingerprint(spark.createDataFrame(rows[:2], schema)) != same
    training = app_config.training
    key = run_key(AS_OF, training, 100, same, "code")
    assert run_key(AS_OF, dataclasses.replace(training, epochs=training.epochs + 5), 100, same, "code") == key
    assert run_key(AS_OF, training, 100, same, "other code") != key
    assert run_key(AS_OF, dataclasses.replace(training, seed=training.seed + 1), 100, same, "code") != key


def test_a_member_is_taken_up_only_with_its_best_weights_and_the_same_epochs(tmp_path):
    from promo_roi.training.checkpoints import record_outcome, recorded_outcome

    outcome = {"history": [{"epoch": 1, "train_outcome_loss": 0.5}], "best_epoch": 1, "backend": "gloo"}
    record_outcome(tmp_path, 3, outcome)
    assert recorded_outcome(tmp_path, 3) is None  # no best weights: the fine-tuning is not over
    (tmp_path / "final.pt").write_bytes(b"weights")
    assert recorded_outcome(tmp_path, 3) == outcome
    assert recorded_outcome(tmp_path, 4) is None  # asked for more epochs: resume from the last checkpoint
    assert not list(tmp_path.glob("*.tmp"))


# --- the champion rule ---------------------------------------------------------------------


@pytest.mark.parametrize("candidate,champion,refuted_ok,promoted", [
    (0.5, None, True, True),      # no champion yet
    (0.5, 0.4, True, True),       # better
    (0.4, 0.4, True, False),      # a tie keeps the champion
    (0.3, 0.4, True, False),      # worse
    (0.9, 0.4, False, False),     # better but failed a refutation check
    (float("nan"), None, True, False),
])
def test_champion_rule(candidate, champion, refuted_ok, promoted):
    assert decide_champion(candidate, champion, refuted_ok)[0] is promoted


@pytest.mark.parametrize("difference,low,high,refuted_ok,promoted", [
    (0.3, 0.1, 0.5, True, True),      # better on the whole interval
    (0.3, -0.1, 0.5, True, False),    # better on average, but inside the noise: the champion stays
    (0.0, 0.0, 0.0, True, False),     # the same model
    (-0.3, -0.5, -0.1, True, False),  # worse
    (0.3, 0.1, 0.5, False, False),    # better but failed a refutation check
])
def test_champion_rule_on_the_paired_difference(difference, low, high, refuted_ok, promoted):
    from promo_roi.training.registry import PairedComparison

    comparison = PairedComparison(champion_metric=0.4, difference=difference, ci_low=low, ci_high=high,
                                  share_better=0.5)
    decided, reason = decide_champion(0.4 + difference, comparison, refuted_ok)
    assert decided is promoted
    if refuted_ok:
        assert f"[{low:.6g}, {high:.6g}]" in reason


def _refutation_frames(n: int = 400):
    """Held-out rows of one test campaign and of its fake window, one row per household, every other one
    targeted. Propensity 0.5 and arm means of 0 make each DR pseudo-outcome 2 * y * (2t - 1): an effect sits
    where targeted households spend. Real effect: targeted households 200-399 spend 10. Fake window:
    targeted households 0-99 and 200-299 spend 10, an effect that cannot exist."""
    from promo_roi.training.evaluate import Nuisance

    household = np.arange(n)
    targeted = (household % 2).astype(float)
    real = np.where((household >= 200) & (targeted == 1), 10.0, 0.0)
    fake_households = (household < 100) | ((household >= 200) & (household < 300))
    fake = np.where(fake_households & (targeted == 1), 10.0, 0.0)

    def frame(y):
        return pd.DataFrame({"household_id": household, "campaign_id": 7, "targeted": targeted,
                             "coupon_product_spend": y, "spend": y})

    nuisance = Nuisance(e=np.full(n, 0.5), mu={o: (np.zeros(n), np.zeros(n)) for o in ("coupon_product_spend", "spend")})
    return frame(real), frame(fake), nuisance, fake_households


def _predicting(uplift: np.ndarray) -> pd.DataFrame:
    out = {}
    for outcome in ("coupon_product_spend", "spend"):
        out.update({f"{outcome}_t0": np.zeros(uplift.size), f"{outcome}_t1": uplift, f"uplift_{outcome}": uplift})
    return pd.DataFrame(out)


def test_the_gate_refuses_a_ranking_that_follows_the_fake_window_and_ignores_the_data_diagnostics(app_config):
    """A model whose uplift orders households by the fake window's effects fails placebo_ranking and is not
    promotable; one that ranks the real effect and is blind to the fake one passes. The DR placebo finds
    the same fake effect for both (the data's, not the model's) and gates neither."""
    from promo_roi.training.evaluate import GATE_CHECKS, refutation_rows, refutations_passed

    cfg = dataclasses.replace(app_config.evaluation, bootstrap_samples=200, placebo_tolerance=0.25)
    test, placebo, nuisance, fake_households = _refutation_frames()
    household = test["household_id"].to_numpy()
    models = {
        # high where the fake effect is: on the real window it is as good as random (half of each)
        "follows_selection": fake_households.astype(float),
        # high on households 200-399: the real effect; the fake effect is split evenly between its two groups
        "follows_the_effect": (household >= 200).astype(float),
    }
    rows = []
    for name, score in models.items():
        rows += refutation_rows(name, test, _predicting(score), nuisance, placebo, _predicting(score), nuisance, cfg)
    by = {(r["model_name"], r["check"], r["outcome"]): r for r in rows}
    assert len(rows) == 2 * 3 * 2 and GATE_CHECKS == ("placebo_ranking",)
    assert {(c, o) for (_m, c, o), r in by.items() if r["gates_promotion"]} == {("placebo_ranking",
                                                                                 "coupon_product_spend")}

    bad = by[("follows_selection", "placebo_ranking", "coupon_product_spend")]
    assert not bad["passed"] and bad["ci_low"] > 0 and abs(bad["reference_effect"]) < 0.5
    good = by[("follows_the_effect", "placebo_ranking", "coupon_product_spend")]
    assert good["passed"] and good["effect"] == pytest.approx(0.0, abs=1e-9) and good["reference_effect"] > 1
    assert refutations_passed(rows, "follows_the_effect") and not refutations_passed(rows, "follows_selection")

    # The DR average effect on the fake window: 2 * 10 * 100 / 400 = 5 per household for both models.
    for name in models:
        diagnostic = by[(name, "placebo", "coupon_product_spend")]
        assert diagnostic["effect"] == pytest.approx(5.0) and not diagnostic["passed"]
        assert not diagnostic["gates_promotion"] and "not a promotion gate" in diagnostic["detail"]
    assert not refutations_passed([r for r in rows if r["check"] != "placebo_ranking"], "follows_the_effect")


def test_a_candidate_compared_with_itself_is_not_better(app_config):
    """The paired comparison of identical predictions is exactly 0 on every draw, so the champion stays."""
    import dataclasses

    from promo_roi.training.evaluate import Nuisance, paired_validation_comparison

    rng = np.random.default_rng(1)
    n = 120
    frame = pd.DataFrame({"campaign_id": np.repeat([5, 6], n // 2), "household_id": np.arange(n),
                          "coupon_product_spend": rng.gamma(2.0, 5.0, n), "targeted": rng.integers(0, 2, n)})
    mu = (np.full(n, 9.0), np.full(n, 11.0))
    nuisance = Nuisance(e=np.full(n, 0.5), mu={"coupon_product_spend": mu})
    predictions = pd.DataFrame({"uplift_coupon_product_spend": rng.normal(size=n)})
    cfg = dataclasses.replace(app_config.evaluation, bootstrap_samples=30)
    d = paired_validation_comparison(predictions, predictions.copy(), frame, nuisance, cfg)
    assert (d["difference"], d["ci_low"], d["ci_high"], d["share_better"]) == (0.0, 0.0, 0.0, 0.0)


class _ConstantUplift:
    """A real MLflow pyfunc that predicts one uplift for every row."""

    @staticmethod
    def log(value: float, name: str) -> str:
        import mlflow

        class Model(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return pd.DataFrame({"uplift": [value] * len(model_input)})

        info = mlflow.pyfunc.log_model(name="model", python_model=Model(), registered_model_name=name,
                                       input_example=pd.DataFrame({"x": [1.0]}))
        return str(info.registered_model_version)


def test_alias_moves_only_to_a_better_model(tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.training.registry import promote_if_better

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    store = MlflowStore(uri, str(tmp_path / "artifacts"))
    before = mlflow.get_tracking_uri()
    name, alias = "champion_test_model", "champion"
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    metric = lambda model: float(model.predict(frame)["uplift"].mean())  # noqa: E731
    decisions = []
    with store.fluent():
        experiment_id = store.experiment_id("champion-test")
        for value in (0.5, 0.2, 0.8):
            with mlflow.start_run(experiment_id=experiment_id):
                version = _ConstantUplift.log(value, name)
                decisions.append(promote_if_better(store, name, alias, version, value, "m", metric, True))
    assert [d.promoted for d in decisions] == [True, False, True]
    assert decisions[1].champion_metric == pytest.approx(0.5)  # the champion was re-scored
    assert store.alias_version(name, alias) == "3"
    assert str(MlflowClient(tracking_uri=uri).get_model_version_by_alias(name, alias).version) == "3"
    # The store pointed MLflow's fluent API at itself only inside the block.
    assert mlflow.get_tracking_uri() == before != uri
    assert store.alias_version(name, "no-such-alias") is None


@pytest.mark.e2e  # three MLflow models logged and two promotions played (about 40 s): not in make test-fast
def test_of_two_concurrent_promotions_one_wins_and_the_alias_follows_the_ledger(spark, config_for, tmp_path):
    """Runs A and B both beat champion v1. B compares first; while it does, A is promoted (the interleaving
    of two trainings finishing together). B's claim then finds v1 replaced: B is not promoted, A stays
    champion in gold.model_champion and on the alias. An alias moved by hand goes back to the ledger's."""
    import mlflow

    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.tables import MODEL_CHAMPION
    from promo_roi.training.champion_ledger import ChampionLedger, serving_version
    from promo_roi.training.registry import promote_if_better

    warehouse = config_for("champion_ledger").warehouse
    store = MlflowStore(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    name, alias = "ledger_test_model", "champion"
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    metric = lambda model: float(model.predict(frame)["uplift"].mean())  # noqa: E731

    def ledger(run_id: str) -> ChampionLedger:
        return ChampionLedger(spark, warehouse, name, alias, run_id)

    with store.fluent():
        experiment_id = store.experiment_id("ledger-test")
        with mlflow.start_run(experiment_id=experiment_id) as first:
            v1 = _ConstantUplift.log(0.1, name)
            assert promote_if_better(store, name, alias, v1, 0.1, "m", metric, True, ledger(first.info.run_id)).promoted
        with mlflow.start_run(experiment_id=experiment_id) as run_a:
            v_a = _ConstantUplift.log(0.5, name)
        with mlflow.start_run(experiment_id=experiment_id) as run_b:
            v_b = _ConstantUplift.log(0.9, name)
            decisions = {}

            def b_compares(champion) -> float:
                with mlflow.start_run(run_id=run_a.info.run_id, nested=True):
                    decisions["a"] = promote_if_better(store, name, alias, v_a, 0.5, "m", metric, True,
                                                       ledger(run_a.info.run_id))
                return metric(champion)

            decisions["b"] = promote_if_better(store, name, alias, v_b, 0.9, "m", b_compares, True,
                                               ledger(run_b.info.run_id))
    assert decisions["a"].promoted and decisions["a"].champion_version == v1
    assert not decisions["b"].promoted and decisions["b"].champion_version == v1
    assert f"another run promoted version {v_a}" in decisions["b"].reason
    assert store.alias_version(name, alias) == v_a
    rows = delta_io.read_table(spark, MODEL_CHAMPION, warehouse).orderBy("sequence").toPandas()
    assert rows[["sequence", "version", "previous_version"]].values.tolist() == [[1, v1, None], [2, v_a, v1]]
    assert rows["mlflow_run_id"].tolist() == [first.info.run_id, run_a.info.run_id]

    store.set_alias(name, alias, v_b)  # moved by hand (or a run killed between claim and alias)
    # Scoring serves the ledger's champion meanwhile; with no promotion recorded, the alias's.
    assert serving_version(spark, warehouse, store, name, alias) == v_a
    store.set_alias(name, "other_alias", v_b)
    assert serving_version(spark, warehouse, store, name, "other_alias") == v_b
    with store.fluent(), mlflow.start_run(experiment_id=experiment_id) as run_c:
        v_c = _ConstantUplift.log(0.2, name)
        kept = promote_if_better(store, name, alias, v_c, 0.2, "m", metric, True, ledger(run_c.info.run_id))
    assert not kept.promoted and kept.champion_version == v_a and kept.champion_metric == pytest.approx(0.5)
    assert store.alias_version(name, alias) == v_a


def test_a_training_run_replaces_only_its_own_rows_of_the_date(spark, config_for):
    """A retrained candidate (run b) that is not promoted must leave the champion's rows (run a) in place."""
    from promo_roi.tables import MODEL_EVALUATION
    from promo_roi.training.pipeline import publish_rows

    config = config_for("training_rows")
    metric = {"model_name": "transformer", "scope": "validation", "outcome": "spend", "metric": "qini"}

    def store(run: str, value: float) -> None:
        publish_rows(spark, [{**metric, "value": value}], MODEL_EVALUATION, config, AS_OF,
                     {"as_of_date": AS_OF, "mlflow_run_id": run})

    def held() -> dict[str, float]:
        rows = delta_io.read_table(spark, MODEL_EVALUATION, config.warehouse).filter(F.col("as_of_date") == AS_OF)
        return {r.mlflow_run_id: r.value for r in rows.collect()}

    store("aaa111", 0.5)
    store("bbb222", 0.7)
    assert held() == {"aaa111": 0.5, "bbb222": 0.7}
    store("bbb222", 0.9)  # the same run again: its rows are replaced, not added
    assert held() == {"aaa111": 0.5, "bbb222": 0.9}
    with pytest.raises(ValueError, match="unexpected MLflow run id"):
        store("x' OR '1'='1", 0.0)


# --- end to end on the fixture -------------------------------------------------------------


def _gold(spark, spec, config):
    return delta_io.read_table(spark, spec, config.warehouse).filter(F.col("as_of_date") == F.lit(AS_OF)).toPandas()


def test_training_ran_distributed_on_two_processes(trained):
    _config, result = trained
    assert len(result.history) == 1
    assert result.counts["train"] > 0 and result.counts["test"] > 0 and result.counts["placebo"] > 0
    assert all(math.isfinite(h["train_outcome_loss"]) for h in result.history)


# The four gold tables a training run writes its evaluation to, in the order it commits them (after the examples).
EVALUATION_TABLES = (MODEL_EVALUATION, POSITIVITY_DIAGNOSTICS, REFUTATION_CHECKS, UPLIFT_CURVES)


def _run_rows(spark, spec, config, run_id: str) -> pd.DataFrame:
    """One training run's rows of ``spec`` as of AS_OF, without the run id and time, in a stable order."""
    frame = _gold(spark, spec, config)
    frame = frame[frame["mlflow_run_id"] == run_id].drop(columns=["mlflow_run_id", "evaluated_at"], errors="ignore")
    return frame.sort_values(list(frame.columns)).reset_index(drop=True).astype(str)


def test_a_training_killed_before_each_commit_resumes_and_evaluates_as_the_first(
        spark, trained, copy_warehouse, tmp_path_factory):
    """The fixture's training again, on a copy of its warehouse with checkpoints of its own, killed before each of
    its Delta commits in turn (the examples slice, then the four evaluation tables), and then run whole.

    - After each kill the first run's rows of every table, the champion's promotions and the alias are as they
      were; the killed run's rows are in the tables it committed, whole (the same rows as the run that completes),
      and in no other.
    - Only the first attempt that gets past the examples fine-tunes: the later ones take up its recorded members
      (its best weights are not written again).
    - The run that completes scores the held-out campaigns exactly as the first training did, every transformer
      metric of gold.model_evaluation the same number and the same epoch losses: one training (petastorm +
      TorchDistributor, 2 processes) is the model, not one draw of it, and a resumed run is the uninterrupted one."""
    from conftest import InjectedFault, fail_at
    from promo_roi.mlflow_io import MlflowStore
    from promo_roi.tables import MODEL_CHAMPION
    from promo_roi.training.pipeline import train

    config, first = trained
    again = copy_warehouse(config, "training_killed")
    own = tmp_path_factory.mktemp("training_killed_run")
    again = dataclasses.replace(again, training=dataclasses.replace(
        again.training, checkpoint_dir=str(own / "checkpoints"), petastorm_cache_dir=str(own / "petastorm")))
    training = again.training
    store = MlflowStore(again.mlflow.tracking_uri)
    store.set_alias(training.registered_model, training.champion_alias, first.model_version)
    first_rows = {spec.full_name: _run_rows(spark, spec, again, first.mlflow_run_id) for spec in EVALUATION_TABLES}
    promotions = lambda: (delta_io.read_table(spark, MODEL_CHAMPION, again.warehouse).toPandas()  # noqa: E731
                          if delta_io.table_exists(spark, MODEL_CHAMPION, again.warehouse) else None)
    promotions_before = promotions()
    order = [training_examples_spec(again.features).full_name] + [spec.full_name for spec in EVALUATION_TABLES]
    killed: dict[int, str] = {}  # kill_at -> the killed run's MLflow run id
    best_weights = lambda: sorted((p.name, p.stat().st_mtime_ns) for p in (own / "checkpoints").rglob("final.pt"))  # noqa: E731
    weights_after_fine_tune = None
    for kill_at in range(1, len(order) + 2):
        with fail_at(kill_at) as commits:
            try:
                second = train(spark, again, AS_OF)
            except InjectedFault:
                pass
            else:
                break
        assert [table for _, table in commits] == order[:kill_at], kill_at
        runs = {run for spec in EVALUATION_TABLES for run in _gold(spark, spec, again)["mlflow_run_id"]}
        new_runs = runs - {first.mlflow_run_id, *killed.values()}
        assert len(new_runs) <= 1, new_runs
        killed.update((kill_at, run) for run in new_runs)
        for spec in EVALUATION_TABLES:
            pd.testing.assert_frame_equal(_run_rows(spark, spec, again, first.mlflow_run_id), first_rows[spec.full_name])
        if promotions_before is None:
            assert promotions() is None
        else:
            pd.testing.assert_frame_equal(promotions(), promotions_before)
        assert store.alias_version(training.registered_model, training.champion_alias) == first.model_version
        if kill_at >= 2:
            weights_after_fine_tune = weights_after_fine_tune or best_weights()
            assert weights_after_fine_tune and best_weights() == weights_after_fine_tune, "fine-tuned again"
    assert kill_at == len(order) + 1 and len(commits) == len(order), "the run that completed made other commits"
    assert best_weights() == weights_after_fine_tune
    assert not second.promoted  # the same model as the champion: a tie keeps it
    # Each killed run's rows are where it committed, whole: the completed run's rows, table by table.
    assert sorted(killed) == [3, 4, 5]
    for kill_at, run in killed.items():
        for position, spec in enumerate(EVALUATION_TABLES, start=2):
            rows = _run_rows(spark, spec, again, run)
            if position < kill_at:
                pd.testing.assert_frame_equal(rows, _run_rows(spark, spec, again, second.mlflow_run_id))
            else:
                assert rows.empty, (kill_at, spec.full_name)

    def transformer_metrics(run_config, run) -> dict:
        ev = _gold(spark, MODEL_EVALUATION, run_config)
        ev = ev[(ev["mlflow_run_id"] == run.mlflow_run_id) & (ev["model_name"] == "transformer")]
        # NaN (a metric undefined on the fixture's few overlap households) compares by name.
        return {(r.split, r.scope, r.outcome, r.metric): "nan" if math.isnan(r.value) else r.value
                for r in ev.itertuples()}

    expected = transformer_metrics(config, first)
    assert len(expected) > 10
    assert transformer_metrics(again, second) == expected
    losses = lambda run: [{k: v for k, v in h.items() if "loss" in k} for h in run.history]  # noqa: E731
    assert losses(second) == losses(first)


def test_examples_split_by_time_one_row_per_key(spark, trained):
    config, _ = trained
    spec = training_examples_spec(config.features)
    ex = delta_io.read_table(spark, spec, config.warehouse).filter(F.col("as_of_date") == F.lit(AS_OF))
    assert ex.count() == ex.select(*spec.keys).distinct().count()
    starts = {r.split: (r.first, r.last) for r in ex.groupBy("split").agg(
        F.min("start_date").alias("first"), F.max("start_date").alias("last")).collect()}
    assert starts["train"][1] <= starts["validation"][0] <= starts["validation"][1] <= starts["test"][0]
    # Only campaigns that ended before the as-of date, with their whole window observed.
    assert ex.filter(F.col("end_date") >= F.lit(AS_OF)).count() == 0
    # Features are as of the campaign start: nobody's last purchase is on or after it.
    assert ex.filter(F.col("days_since_last_purchase") < 1).count() == 0


def _history_texts_by_hand(transactions: pd.DataFrame, products: pd.DataFrame, households, start: dt.date,
                           weeks: int, categories: int) -> dict[int, str]:
    """Each household's purchase-history text as of ``start``, worked out in pandas from the bronze rows."""
    def present(values: pd.Series) -> pd.Series:
        stripped = values.str.strip()
        return stripped.where(stripped.notna() & (stripped != ""))

    label = present(products["product_category"]).fillna(present(products["department"])).fillna("unknown")
    labels = dict(zip(products["product_id"], label.str.lower()))
    day = transactions["transaction_timestamp"].dt.date
    window = transactions[(day < start) & (day >= start - dt.timedelta(days=7 * weeks))
                          & transactions["household_id"].isin(households)]
    spend = (window.assign(category=window["product_id"].map(labels).fillna("unknown"))
             .groupby(["household_id", "category"])["sales_value"].sum())
    texts = {}
    for household, by_category in spend[spend > 0].groupby(level=0):
        by_category = by_category.droplevel(0)
        top = sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))[:categories]
        total = by_category.sum()
        parts = [f"{name} {int(math.floor(value / total * 100 + 0.5))}%" for name, value in top]
        texts[household] = f"bought in the last {weeks} weeks: " + ", ".join(parts) + "."
    return texts


def test_each_example_carries_the_households_purchase_history_as_of_the_campaign_start(spark, trained):
    """silver.training_examples.history_text: what the household bought in the weeks before the campaign's start
    (features.history_weeks, features.history_categories), recomputed here from bronze in pandas; households
    without a purchase in that window get the no-purchases text."""
    config, _ = trained
    features = config.features
    ex = delta_io.read_table(spark, training_examples_spec(features), config.warehouse).filter(
        F.col("as_of_date") == F.lit(AS_OF)).select("household_id", "start_date", "history_text").toPandas()
    transactions = delta_io.read_table(spark, SOURCE_TABLES["transactions"], config.warehouse).select(
        "household_id", "product_id", "sales_value", "transaction_timestamp").toPandas()
    products = delta_io.read_table(spark, SOURCE_TABLES["products"], config.warehouse).select(
        "product_id", "department", "product_category").toPandas()
    no_purchases = f"no purchases in the last {features.history_weeks} weeks."
    checked = without = 0
    for start, rows in ex.groupby("start_date"):
        expected = _history_texts_by_hand(transactions, products, set(rows["household_id"]), start,
                                          features.history_weeks, features.history_categories)
        for household, text in zip(rows["household_id"], rows["history_text"]):
            assert text == expected.get(household, no_purchases), (household, start)
            checked += 1
            without += household not in expected
    assert checked == len(ex) > 0 and without < checked


def test_model_evaluation_scores_three_models_on_the_same_test_rows(spark, trained):
    config, result = trained
    ev = _gold(spark, MODEL_EVALUATION, config)
    test = ev[ev["split"] == "test"]
    models = {"heuristic_pre_spend", "lgbm_t_learner", "transformer"}
    for metric in ("qini", "auuc"):
        rows = test[(test["metric"] == metric) & (test["scope"] == "overall")]
        assert set(rows["model_name"]) == models
        assert rows["n_rows"].nunique() == 1 and rows["n_rows"].iloc[0] == result.counts["test"]
    assert set(test[test["metric"] == "auc"]["model_name"]) == models
    assert set(test[test["metric"] == "wape"]["model_name"]) == models
    # The DR effect sits next to the naive difference the README warns about.
    assert {"doubly_robust", "naive_difference"} <= set(test["model_name"])
    assert (ev["mlflow_run_id"] == result.mlflow_run_id).all()


def test_positivity_and_refutation_tables(spark, trained):
    config, result = trained
    pos = _gold(spark, POSITIVITY_DIAGNOSTICS, config)
    assert set(pos["propensity_source"]) == {"crossfit_lgbm", "transformer_head"}
    assert set(pos["split"]) == {"validation", "test"}
    assert ((pos["share_in_overlap"] >= 0) & (pos["share_in_overlap"] <= 1)).all()
    ref = _gold(spark, REFUTATION_CHECKS, config)
    assert len(ref) == 3 * 3 * 2  # models x (placebo_ranking, placebo, stability) x (coupon-product spend, spend)
    assert set(ref["check"]) == {"placebo_ranking", "placebo", "stability"}
    gate = ref[ref["gates_promotion"]]
    assert set(zip(gate["model_name"], gate["check"], gate["outcome"])) == {
        (m, "placebo_ranking", "coupon_product_spend") for m in ("transformer", "lgbm_t_learner", "heuristic_pre_spend")}
    transformer_ok = gate[gate["model_name"] == "transformer"]["passed"].all()
    # The gate: promoted only if the gating refutation passed (and it beat an absent champion).
    assert result.promoted == bool(transformer_ok)


def test_model_registered_with_signature_and_loads_for_scoring(spark, trained):
    import mlflow
    from mlflow import MlflowClient

    config, result = trained
    training, _, mlflow_config = config.require_training()
    mlflow.set_tracking_uri(mlflow_config.tracking_uri)
    client = MlflowClient()
    version = client.get_model_version(training.registered_model, result.model_version)
    assert version.run_id == result.mlflow_run_id
    run = client.get_run(result.mlflow_run_id)
    assert "train_outcome_loss" in run.data.metrics and "validation_loss" in run.data.metrics
    assert "validation_outcome_loss" in run.data.metrics and "validation_propensity_loss" in run.data.metrics
    assert run.data.params["training.num_processes"] == "2"
    model = mlflow.pyfunc.load_model(f"models:/{training.registered_model}/{result.model_version}")
    assert model.metadata.signature is not None
    ex = delta_io.read_table(spark, training_examples_spec(config.features), config.warehouse).filter(
        F.col("split") == "test").limit(7).toPandas()
    pred = model.predict(ex)
    assert len(pred) == 7
    assert ((pred["p_redeem_t1"] >= 0) & (pred["p_redeem_t1"] <= 1)).all()
    np.testing.assert_allclose(pred["uplift_spend"], pred["spend_t1"] - pred["spend_t0"])
