"""Rolling-origin yardstick: every model judged on many held-out campaigns, against the same pseudo-outcomes.

    spark-submit jobs/evaluate.py --as-of 2018-01-01 [--first-held-out 6] [--ablation text_input=none ...]
        [--profile local|cluster] [--set k=v ...]

Needs bronze and silver.campaign_exposures for --as-of (jobs/build_features.py).
Every fully observed campaign from the --first-held-out-th by start date on is
held out in turn; its transformer (jobs/train.py's network and schedule, one
process), LightGBM T-learner, LightGBM DR-learner (the effect regressed on
doubly robust pseudo-outcomes cross-fitted on the training campaigns) and the
pre-period heuristic are fitted only on campaigns that ended before it started. Per held-out campaign and pooled, the
tie-averaged Qini/AUUC on doubly robust pseudo-outcomes fitted once on all
campaigns, the placebo Qini on the pre-period and the paired bootstrap
difference against the heuristic replace the --as-of slice of
gold.rolling_origin_evaluation (promo_roi.training.rolling_origin). Nothing is
registered and no champion moves. Each --ablation (training settings,
comma-separated key=value) trains a second transformer per fold with those
settings changed, judged beside the first and compared paired with it
(``transformer [text_input=none]``: the network without any text). Exit 2
on refused input, an ablation's unknown key or impossible value included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging

from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job


def positive(value: str) -> int:
    number = int(value)
    if number < 2:
        raise argparse.ArgumentTypeError("--first-held-out must be at least 2 (campaigns before it train)")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Rolling-origin evaluation of the transformer and the baselines.")
    parser.add_argument("--as-of", required=True, type=iso_date, help="first day not observed (YYYY-MM-DD)")
    parser.add_argument("--first-held-out", type=positive, default=6,
                        help="the first campaign held out, by start date (default 6)")
    parser.add_argument("--ablation", dest="ablations", action="append", default=[],
                        help="training settings of a second transformer judged beside the first, e.g. text_input=none")
    args = parser.parse_args(argv)

    def body(spark, config) -> None:
        from promo_roi import delta_io
        from promo_roi.tables import ROLLING_ORIGIN_EVALUATION
        from promo_roi.entrypoint import config_from_args
        from promo_roi.training.ablation import ablation_overrides, ablation_settings
        from promo_roi.training.rolling_origin import ablation_label, run_rolling_origin

        log = logging.getLogger("promo_roi.job")
        # Every ablation's settings validated as any override is (ConfigError: exit 2) before any work.
        ablations = {}
        for argument in args.ablations:
            settings = ablation_settings(argument)
            ablated = argparse.Namespace(**{**vars(args), "overrides": [*(args.overrides or []),
                                                                         *ablation_overrides(settings)]})
            ablations[ablation_label(settings)] = config_from_args(ablated).require_training()[0]
        result = run_rolling_origin(spark, config, args.as_of, args.first_held_out, ablations)
        held = ",".join(str(f.held_out) for f in result.folds)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        frame = delta_io.frame_of_records(spark, result.rows, ROLLING_ORIGIN_EVALUATION,
                                          {"as_of_date": args.as_of, "held_out_campaigns": held, "evaluated_at": now})
        version = delta_io.replace_date_slice(spark, frame, ROLLING_ORIGIN_EVALUATION, config.warehouse,
                                              "as_of_date", args.as_of)
        log.info("evaluate: %d folds (held out %s), %d held-out rows, %d placebo rows, %d result rows "
                 "(%s version %d)", len(result.folds), held, result.held_out_rows, result.placebo_rows,
                 len(result.rows), ROLLING_ORIGIN_EVALUATION.full_name, version)
        for r in result.rows:
            if r["campaign_id"] is None and (r["metric"] in ("qini", "placebo_qini")
                                           or r["metric"].startswith("qini_minus_")):
                log.info("evaluate %s %s %s %s: %s [%s, %s]%s", r["model_name"], r["outcome"], r["scope"],
                         r["metric"], r["value"], r["ci_low"], r["ci_high"],
                         "" if r["share_better"] is None else f", wins in {r['share_better']:.0%} of draws")

    return run_job("evaluate", args, body)


if __name__ == "__main__":
    exit_with(main())
