"""Fine-tune the household-response transformer and evaluate it against baselines.

    spark-submit jobs/train.py --as-of 2017-07-01 [--profile local|cluster] [--set training.epochs=3 ...]

Needs silver.campaign_exposures for the as-of date (jobs/build_features.py).
Builds silver.training_examples for campaigns fully observed before the date,
trains through petastorm + TorchDistributor (DistributedDataParallel, gloo on
CPU, nccl on GPU), scores the heuristic, the LightGBM T-learner and the
transformer on the same held-out campaigns into gold.model_evaluation,
gold.positivity_diagnostics and gold.refutation_checks (each one as_of_date
slice, replaced), logs and registers the model in MLflow and moves the
`champion` alias only when the new model passed its refutation checks and
beats the champion on the validation campaigns. Rerunning a date replaces
the same slices; a killed run resumes from its last epoch's checkpoint.
"""

from __future__ import annotations

import logging

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Train and evaluate the household-response model.")
    parser.add_argument("--as-of", required=True, type=iso_date, help="first day not observed (YYYY-MM-DD)")
    args = parser.parse_args(argv)

    def body(spark, config) -> None:
        from promo_roi.training.pipeline import train

        result = train(spark, config, args.as_of)
        logging.getLogger("promo_roi.job").info(
            "train: run %s registered version %s, champion %s (%s)", result.mlflow_run_id,
            result.model_version, "moved to it" if result.promoted else "unchanged", result.champion_reason)

    return run_job("train", args, body)


if __name__ == "__main__":
    exit_with(main())
