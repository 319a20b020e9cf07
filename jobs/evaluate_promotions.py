"""Product promotions measured: the lift yardstick over the last weeks before an as-of date, and what placements
cost beyond their own week.

    spark-submit jobs/evaluate_promotions.py --as-of 2018-01-02 [--held-out-weeks 8] [--profile ...] [--set ...]

Reads silver.item_store_week and its features (run jobs/build_item_store_week.py
for the same as-of date first). Each held-out week is forecast by models
fitted on the weeks before it: the merchandiser baselines (no lift, the
category's lift, the product's own last lift) and LightGBM. Replaces the
as-of date's slice of gold.promotion_lift_evaluation (WAPE of product-week
totals, lift WAPE and Poisson deviance per model and placement type,
product-resampled intervals, paired differences against the best baseline),
then of gold.promotion_side_effects: the dip in the week after a placement
(pull-forward) and the loss of the category's other products in the store
(cannibalisation), as rates of the units expected and shares of the
placements' lift, over every week before the as-of date.
"""

from __future__ import annotations

from promo_roi.entrypoint import exit_with, iso_date, job_parser, positive_int, run_job
from promo_roi.product_promotions.evaluation import evaluate_promotion_lift, measure_side_effects


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Rolling-origin yardstick of promotion lift forecasts, then pull-forward and "
                        "cannibalisation.")
    parser.add_argument("--as-of", required=True, type=iso_date, help="first day not observed (YYYY-MM-DD)")
    parser.add_argument("--held-out-weeks", type=positive_int, default=8, help="weeks forecast, the last before --as-of")
    args = parser.parse_args(argv)

    def evaluate(spark, config) -> dict[str, int]:
        counts = evaluate_promotion_lift(spark, config, args.as_of, args.held_out_weeks)
        return {**counts, **measure_side_effects(spark, config, args.as_of)}

    return run_job("evaluate_promotions", args, evaluate)


if __name__ == "__main__":
    exit_with(main())
