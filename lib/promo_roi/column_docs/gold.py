"""gold: what training, scoring, planning and the backtest publish."""

from __future__ import annotations

VALUE_OUTCOME = (
    "The outcome whose calibrated uplift is the incremental revenue here (scoring.value_outcome): "
    "'coupon_product_spend' (what the champion is validated on) or 'spend' (total spend). Null on rows "
    "published before the setting existed, which valued total spend."
)

IN_OVERLAP = (
    "True: the pair's propensity is inside evaluation.overlap_band, so households like it were both targeted and "
    "not and its effect rests on both arms; False: extrapolated from one arm. Null on rows published before the "
    "flag."
)

ROI_FORECAST: dict[str, str] = {
    "campaign_id": "Planned campaign (gold.campaign_plans) that starts on or after the run date.",
    "campaign_type": "Campaign type, from gold.campaign_plans.",
    "start_date": "First day of the campaign window, from gold.campaign_plans.",
    "end_date": "Last day of the campaign window, inclusive, from gold.campaign_plans.",
    "audience": (
        "Households the forecast sums over: the campaign's target list, or every scored household when it has none "
        "(audience_source)."
    ),
    "audience_source": (
        "'campaign_target_list' (bronze.campaigns lists the campaign's households) or 'all_households' "
        "(no list, e.g. a planner's new campaign)."
    ),
    "expected_redemptions": (
        "Calibrated expected number of coupon redemptions over the audience (a count: each redemption is paid for)."
    ),
    "incremental_revenue": (
        "Forecast extra spend the campaign causes over the audience in its window, on the outcome value_outcome "
        "names (coupon-product spend by default): a x audience + b x sum(uplift) of that outcome's calibration; "
        "what the ROI counts."
    ),
    "incremental_coupon_product_revenue": (
        "The calibrated forecast on coupon-product spend; equal to incremental_revenue when value_outcome is "
        "coupon_product_spend, for reference only when it is spend."
    ),
    "incremental_gross_profit": (
        "incremental_revenue x gross margin (scoring.gross_margin): incremental gross profit before any campaign "
        "cost, in the currency of the costs."
    ),
    "contact_cost": (
        "Total contact cost: audience x the plan's contact cost per household (a total here, a unit cost in "
        "gold.campaign_plans)."
    ),
    "redemption_cost": (
        "Total expected redemption cost: expected_redemptions x the plan's cost per redemption (a total here, a "
        "unit cost in gold.campaign_plans)."
    ),
    "cost": "contact_cost + redemption_cost: the forecast cost of targeting the whole audience.",
    "roi": (
        "Forecast ROI over the audience, a ratio: (incremental_gross_profit - cost) / cost; 0 is break-even, "
        "0.09 = 9%."
    ),
    "roi_low": (
        "Lower end of roi's 90% interval (scoring.interval): the calibration's bootstrap draws, each with a new "
        "campaign's own deviation."
    ),
    "roi_high": (
        "Upper end of roi's 90% interval (scoring.interval): the calibration's bootstrap draws, each with a new "
        "campaign's own deviation."
    ),
    "incremental_gross_profit_low": "Lower end of the 90% interval of incremental_gross_profit (same draws as roi).",
    "incremental_gross_profit_high": "Upper end of the 90% interval of incremental_gross_profit (same draws as roi).",
    "interval_method": (
        "How the interval was made, in words: level, bootstrap draws, held-out campaigns, between-campaign sd, "
        "Monte Carlo dropout draws if any; last, the score households are valued by (evaluation.ranking)."
    ),
    "input_versions": (
        "Delta version of each table the forecast read (bronze at the audited snapshot, silver.user_features, "
        "gold.campaign_plans): table -> version."
    ),
    "value_outcome": VALUE_OUTCOME,
}


TABLES: dict[str, dict[str, str]] = {
    # --- gold: what training publishes --------------------------------------------------------------------
    "gold.promotion_side_effects": {
        "as_of_date": "First day not observed: every week measured ended before it.",
        "first_week": "First week of the data read (the weeks before it give the first baselines).",
        "last_week": "Last week ended before as_of_date (a pull-forward event needs the week after it).",
        "effect": (
            "pull_forward (units lost the week after a placement) or cannibalisation (units lost by the "
            "category's unplaced products in the store that week); product_promotions/side_effects.py."
        ),
        "placement_type": "display, mailer, display_and_mailer, or all pooled (cannibalisation: all only).",
        "events": "Placed product-store-weeks (pull_forward) or category-store-weeks with a placement "
                  "(cannibalisation) compared: those of a week with controls.",
        "controls": "Unplaced product-store-weeks between unplaced weeks, or category-store-weeks without a "
                    "placement: what gives each week's movement.",
        "lift_units": "The events' units over their baseline (units per unplaced week of the 8 before), summed.",
        "expected_units": "What the next week (or the others) would have sold: the baselines (each product's "
                          "units per unplaced week before) times the controls' ratio in that week, summed.",
        "lost_units": "expected_units minus the units realised. Negative: a halo (more sold than expected).",
        "loss_rate": "lost_units / expected_units: the figure to read first. An association with the week's "
                     "movement removed, not a randomised effect.",
        "loss_rate_low": "5% quantile of loss_rate over 200 draws of whole products (pull_forward) or categories.",
        "loss_rate_high": "95% quantile of loss_rate over the same draws.",
        "share": "lost_units / lift_units: the part of the placements' extra units taken from later weeks or "
                 "from the same shelf; null where lift_units is not positive, unstable where it is small.",
        "share_low": "5% quantile of the share over the same draws (draws without a positive lift left out).",
        "share_high": "95% quantile of the share over the same draws.",
        "evaluated_at": "When the job measured it (UTC).",
    },
    "gold.promotion_lift_evaluation": {
        "as_of_date": "First day not observed: every held-out week ended before it.",
        "first_held_out_week": "First held-out week; each held-out week is forecast by models fitted on earlier weeks.",
        "last_held_out_week": "Last held-out week (the last week ended before as_of_date).",
        "model": (
            "no_lift, category_lift, own_last_lift (the merchandiser baselines) or lgbm (LightGBM); "
            "lib/promo_roi/product_promotions/lift_yardstick.py."
        ),
        "placement_type": "display, mailer, display_and_mailer, or all of them pooled.",
        "rows": "Placed product-store-weeks of the held-out weeks with a baseline: what was forecast.",
        "product_weeks": "Product-weeks those rows sum to (over stores): what wape is taken over.",
        "units": "Units they sold.",
        "wape": (
            "Sum of |units - forecast| / sum of units, both summed per product and week over stores (a single "
            "store-week mostly sells 0 or 1 unit, where absolute error rewards forecasting 0)."
        ),
        "wape_low": "5% quantile of the WAPE over 200 draws of whole products with replacement.",
        "wape_high": "95% quantile of the WAPE over the same draws.",
        "lift_wape": (
            "The same error over the sum of |units - baseline units| per product and week: the share of the "
            "realized departure from the baseline the forecast gets wrong."
        ),
        "bias": "Sum of forecasts over sum of units, minus 1: what a plan summing these means gets wrong in "
                "level (negative: too few units forecast).",
        "bias_low": "5% quantile of the bias over the same draws of whole products.",
        "bias_high": "95% quantile of the bias over the same draws.",
        "poisson_deviance": "Mean Poisson deviance per product-store-week: the proper score of a forecast mean.",
        "deviance_low": "5% quantile of the mean deviance over the same draws.",
        "deviance_high": "95% quantile of the mean deviance over the same draws.",
        "reference_model": "The baseline with the lowest WAPE for this placement type: what each model is held to.",
        "wape_minus_reference": "This model's WAPE minus the reference's (negative: better).",
        "difference_low": "5% quantile of that difference over the same product draws (paired).",
        "difference_high": "95% quantile of that difference over the same product draws.",
        "deviance_minus_reference": "This model's mean Poisson deviance minus the reference's (negative: better).",
        "deviance_difference_low": "5% quantile of that difference over the same draws.",
        "deviance_difference_high": "95% quantile of that difference over the same draws.",
        "evaluated_at": "When the yardstick ran.",
    },
    "gold.model_evaluation": {
        "as_of_date": "As-of date of the training run: its campaigns were fully observed before it.",
        "model_name": (
            "transformer, lgbm_t_learner or heuristic_pre_spend; doubly_robust and naive_difference for the "
            "average-effect rows; transformer_member_<k> for one member of the ensemble alone (scope ensemble)."
        ),
        "split": (
            "Held-out campaigns judged: validation or test; heldout (both pooled) for the calibration rows."
        ),
        "scope": (
            "overall (all rows), overlap (propensity in evaluation.overlap_band), calibration, ranking (which "
            "score values households, evaluation.ranking) or ensemble (how far the network's seeds disagree)."
        ),
        "outcome": "redeemed, coupon_product_spend or spend; redemptions (the count) for calibration rows.",
        "metric": (
            "auc, wape, qini, auuc, mean_predicted_uplift, average_effect; calibration_intercept, _slope, _ratio, "
            "between_campaign_sd; qini_minus_heuristic, values_households (1: chosen); members, member_qini_sd, "
            "member_uplift_sd, mean_abs_uplift."
        ),
        "value": (
            "The metric's value: per household in the outcome's units for qini, auuc, average_effect, "
            "mean_predicted_uplift, intercept and sd (redemptions: log ratio); else a ratio."
        ),
        "ci_low": (
            "Lower end of the 95% bootstrap interval (households resampled; campaigns then households for "
            "calibration); null when none."
        ),
        "ci_high": (
            "Upper end of the 95% bootstrap interval (households resampled; campaigns then households for "
            "calibration); null when none."
        ),
        "n_rows": "Household x campaign rows the metric used (targeted rows only for auc; band rows for overlap).",
        "n_campaigns": "Campaigns among those rows.",
        "evaluated_at": "When the training run wrote the row (UTC).",
    },
    "gold.positivity_diagnostics": {
        "as_of_date": "As-of date of the training run.",
        "split": "Held-out campaigns of the row: validation or test.",
        "campaign_id": "Held-out campaign described.",
        "propensity_source": (
            "crossfit_lgbm (the evaluation's own cross-fitted LightGBM propensity) or transformer_head (the "
            "network's propensity head)."
        ),
        "n": "Household rows of the campaign in the split.",
        "n_targeted": "Of them, households on the campaign's target list.",
        "auc_propensity": (
            "ROC AUC of the propensity for the targeting: 0.5 is unpredictable, near 1 almost deterministic "
            "(effects lean on extrapolation)."
        ),
        "share_in_overlap": "Share (0-1) of the rows whose propensity is inside the overlap band ([0.1, 0.9]).",
        "share_targeted_in_overlap": "Share (0-1) of the targeted rows inside the overlap band.",
        "share_untargeted_in_overlap": "Share (0-1) of the untargeted rows inside the overlap band.",
        "targeted_p05": "5th percentile of the propensity among targeted households.",
        "targeted_p50": "Median propensity among targeted households.",
        "targeted_p95": "95th percentile of the propensity among targeted households.",
        "untargeted_p05": "5th percentile of the propensity among untargeted households.",
        "untargeted_p50": "Median propensity among untargeted households.",
        "untargeted_p95": "95th percentile of the propensity among untargeted households.",
    },
    "gold.refutation_checks": {
        "as_of_date": "As-of date of the training run.",
        "model_name": "transformer, lgbm_t_learner or heuristic_pre_spend.",
        "check": (
            "In the fake window (campaigns moved back by their duration, where no effect can exist): "
            "placebo_ranking (the uplift must not rank households by the fake effects), placebo (the DR "
            "effect must be about 0); or stability (two household halves must agree)."
        ),
        "outcome": "coupon_product_spend (the one the champion gate uses) or spend.",
        "passed": (
            "placebo_ranking and placebo: interval covers 0 or |effect| <= evaluation.placebo_tolerance x "
            "|reference_effect|; stability: halves within evaluation.stability_z combined standard errors."
        ),
        "effect": (
            "placebo_ranking: the Qini of the model's uplift on the fake window's DR pseudo-outcomes (per "
            "household, test-campaign rows); placebo: the DR effect per household on the fake window "
            "(overlap band); stability: half A's DR effect."
        ),
        "ci_low": "Lower end of effect's 95% household-bootstrap interval.",
        "ci_high": "Upper end of effect's 95% household-bootstrap interval.",
        "reference_effect": (
            "placebo_ranking: the model's Qini on the real test window; placebo: its DR effect on the real test "
            "window; stability: half B's effect."
        ),
        "naive_effect": (
            "Placebo: naive targeted-minus-untargeted difference on the fake window (not an effect); null for "
            "the other checks."
        ),
        "detail": "The verdict in words, with the rows the check used.",
        "gates_promotion": (
            "True for the checks the champion gate reads (placebo_ranking on coupon_product_spend): a model that "
            "fails one is not promoted. The others describe the data and gate nothing. Null on rows written "
            "before 2026-12-03 (every coupon_product_spend check gated)."
        ),
    },
    "gold.uplift_curves": {
        "as_of_date": "As-of date of the training run.",
        "model_name": "transformer, lgbm_t_learner or heuristic_pre_spend.",
        "split": "Held-out campaigns of the curve: validation or test.",
        "scope": "overall (all rows) or overlap (propensity inside the overlap band, [0.1, 0.9]).",
        "outcome": "redeemed, coupon_product_spend or spend: the outcome the ranking and the gain are in.",
        "point": "Rows targeted at this point: the `point` highest predicted uplifts of the curve's rows.",
        "n_rows": "Held-out household x campaign rows the curve ranks (those in the band for scope overlap).",
        "fraction_targeted": "point / n_rows, 0-1.",
        "gain": (
            "Sum of the AIPW pseudo-outcomes of the top `point` rows (ties averaged), in the outcome's units: the "
            "estimated effect of targeting them."
        ),
        "random_gain": "fraction_targeted x the gain of all n_rows: what targeting as many rows at random gains.",
    },
    "gold.rolling_origin_evaluation": {
        "as_of_date": "As-of date of the evaluation (jobs/evaluate.py --as-of): campaigns fully observed before it.",
        "model_name": (
            "transformer, lgbm_t_learner, lgbm_dr_learner (the effect regressed on doubly robust pseudo-outcomes), "
            "heuristic_pre_spend, or an ablation of the transformer named by the settings it changed "
            "(transformer [text_input=none]: without any text)."
        ),
        "campaign_id": "Held-out campaign of the row; null for rows pooled over every held-out campaign.",
        "outcome": "redeemed, coupon_product_spend or spend.",
        "scope": "overall (all rows) or overlap (propensity inside the overlap band, [0.1, 0.9]).",
        "metric": (
            "qini, auuc, placebo_qini (on the pre-period: about 0 if unbiased) or qini_minus_<reference> (paired "
            "difference of pooled Qini)."
        ),
        "value": (
            "The metric's value per household in the outcome's units (tie-averaged); pooled rows: row-weighted mean "
            "over campaigns."
        ),
        "ci_low": "Lower end of the 95% two-stage bootstrap interval (campaigns, then households); null per campaign.",
        "ci_high": "Upper end of the 95% two-stage bootstrap interval (campaigns, then households); null per campaign.",
        "share_better": (
            "qini_minus_* rows: share (0-1) of bootstrap draws in which the model beats the reference; null otherwise."
        ),
        "n_rows": "Household x campaign rows the metric used.",
        "n_campaigns": "Campaigns among those rows.",
        "held_out_campaigns": "Comma-separated ids of every campaign held out in turn in this evaluation.",
        "evaluated_at": "When jobs/evaluate.py wrote the row (UTC).",
    },
    "gold.model_champion": {
        "registered_model": "MLflow registered model (training.registered_model, promo_roi_household_response).",
        "alias": "MLflow alias the promotion moved (training.champion_alias, 'champion').",
        "sequence": "Promotion number per registered model and alias (1, 2, ...); the highest is the champion.",
        "version": "Registered model version promoted to champion.",
        "previous_version": "The champion version it replaced; null for the first promotion.",
        "mlflow_run_id": "The training run that claimed the promotion.",
        "reason": (
            "Why the champion gate promoted it, e.g. candidate - champion validation Qini with its interval."
        ),
        "decided_at": "When the promotion was recorded (UTC).",
    },
    # --- gold: what the nightly scoring job publishes ------------------------------------------------------
    "gold.campaign_plans": {
        "campaign_id": "Campaign to plan for: a Complete Journey campaign (seeded) or any new id a planner inserts.",
        "campaign_type": "Campaign type (Type A/B/C for seeded rows); part of the campaign text the model reads.",
        "start_date": (
            "First day of the campaign window; the plan is scored on run dates up to this day."
        ),
        "end_date": "Last day of the campaign window, inclusive; scores and forecasts cover start_date to end_date.",
        "coupon_product_ids": (
            "Products the campaign's coupons cover (bronze.products ids): they define coupon-product spend and the "
            "coupon text."
        ),
        "contact_cost": (
            "Cost per targeted household (print and postage of a mailer), in the currency of the costs; seeded "
            "rows: scoring.contact_cost."
        ),
        "redemption_cost": (
            "Cost per coupon redemption, in the currency of the costs; seeded rows: scoring.redemption_cost, or the "
            "mean coupon discount per coupon-discounted line before the run date."
        ),
        "min_budget": (
            "Optional minimum planned cost for the campaign, best effort (forced pairs are added to reach it); "
            "null: none."
        ),
        "max_budget": "Optional cap on the campaign's planned cost (contact + expected redemption cost); null: none.",
        "coupon_inventory": "Optional cap on the campaign's expected redemptions; null: none.",
        "source": (
            "'completejourney': seeded from the calendar, costs reset from the configuration each night; any other "
            "value (e.g. 'planner') is never changed."
        ),
        "added_at": "When the row was added to the table.",
    },
    "gold.household_scores": {
        "campaign_id": "Planned campaign (gold.campaign_plans) scored.",
        "household_id": "Household scored for the campaign (every household seen before the run date).",
        "p_redeem_targeted": (
            "Champion's raw probability that the household redeems at least one of the campaign's coupons if "
            "targeted."
        ),
        "p_redeem_untargeted": (
            "Raw probability of a redemption if not targeted (near 0: untargeted households practically never "
            "redeem)."
        ),
        "coupon_product_spend_targeted": (
            "Raw expected spend on the campaign's coupon products in the campaign window if targeted, in the source "
            "currency."
        ),
        "coupon_product_spend_untargeted": (
            "Raw expected spend on the campaign's coupon products in the campaign window if not targeted."
        ),
        "spend_targeted": "Raw expected total spend of the household in the campaign window if targeted.",
        "spend_untargeted": "Raw expected total spend of the household in the campaign window if not targeted.",
        "uplift_redeem": "p_redeem_targeted - p_redeem_untargeted: raw uplift in the probability of redeeming.",
        "uplift_coupon_product_spend": (
            "Raw uplift, a ranking score, not a level to sum: coupon_product_spend_targeted - _untargeted, or the "
            "pre-period coupon-product spend where households are valued by it (the forecast's interval_method says)."
        ),
        "uplift_spend": (
            "spend_targeted - spend_untargeted (raw), or the pre-period coupon-product spend where households are "
            "valued by it (the forecast's interval_method says); calibrated_uplift_spend is the level to use."
        ),
        "incremental_gross_profit": (
            "Expected incremental gross profit of the pair: the calibrated uplift of the outcome value_outcome "
            "names (calibrated_uplift_coupon_product_spend or calibrated_uplift_spend) x scoring.gross_margin."
        ),
        "expected_cost": (
            "Expected cost of targeting the pair: contact cost + expected_redemptions x cost per redemption "
            "(gold.campaign_plans)."
        ),
        "calibrated_uplift_spend": (
            "Calibrated total-spend effect of targeting the household in the campaign window: a + b x uplift_spend "
            "(fitted on held-out campaigns)."
        ),
        "calibrated_p_redeem": (
            "Calibrated probability of at least one redemption if targeted: p_redeem_targeted x observed/predicted "
            "redeemers, within [0, 1]."
        ),
        "expected_redemptions": (
            "Calibrated expected number of redemptions if targeted: p_redeem_targeted x observed/predicted "
            "redemptions (a count, each paid for)."
        ),
        "calibrated_uplift_coupon_product_spend": (
            "Calibrated coupon-product spend effect of targeting the household in the campaign window: "
            "a + b x uplift_coupon_product_spend (fitted on held-out campaigns)."
        ),
        "value_outcome": VALUE_OUTCOME,
        "propensity": (
            "The network's probability that a campaign like this one targets the household (its propensity head, "
            "trained on the training campaigns' target lists)."
        ),
        "in_overlap": IN_OVERLAP,
    },
    "gold.campaign_roi_forecast": dict(ROI_FORECAST),
    "gold.budget_plan": {
        "campaign_id": "Planned campaign; every plan of the night has a row, funded or not.",
        "planning_mode": (
            "fixed_budget (the most profit for total_budget) or target_roi (every pair whose ROI stays above "
            "target_roi)."
        ),
        "total_budget": (
            "Cap on the expected cost of all campaigns together (--budget or planning.total_budget); null when the "
            "plan had none."
        ),
        "target_roi": "ROI bar of target_roi mode, a ratio (0.5 = 50%); null in fixed_budget mode.",
        "household_cap": "Most campaigns one household may receive in the plan (planning.household_cap).",
        "min_budget": "The campaign's minimum budget the plan worked with (gold.campaign_plans); null: none.",
        "max_budget": "The campaign's maximum budget the plan worked with (gold.campaign_plans); null: none.",
        "coupon_inventory": (
            "The campaign's cap on expected redemptions the plan worked with (gold.campaign_plans); null: none."
        ),
        "budget": (
            "Expected cost of the pairs chosen for the campaign (contact + expected redemptions x cost per "
            "redemption): a forecast, not money spent."
        ),
        "audience": "Households the plan chose for the campaign.",
        "expected_redemptions": "Calibrated expected redemptions of the chosen households.",
        "expected_incremental_revenue": (
            "Calibrated incremental spend of the chosen households on the outcome the night valued them on "
            "(scoring.value_outcome; gold.campaign_roi_forecast.value_outcome), in the currency of the costs."
        ),
        "expected_incremental_gross_profit": "expected_incremental_revenue x gross margin (scoring.gross_margin).",
        "expected_incremental_profit": (
            "expected_incremental_gross_profit - budget: what targeting the chosen households is expected to add "
            "after its cost."
        ),
        "roi": (
            "Plan ROI over the chosen households, a ratio: expected_incremental_profit / budget (0.09 = 9%); null "
            "when none is chosen."
        ),
        "marginal_roi": (
            "Lowest marginal ROI among the moves of the last price step that admitted one of its pairs (a ratio); "
            "null when none."
        ),
        "forced_households": "Pairs added only to meet the campaign's min_budget (forced).",
        "min_budget_shortfall": (
            "How far budget stays below min_budget, in the currency of the costs; 0 when met or when there is none."
        ),
        "plan_budget_used": "Expected cost of the whole plan, all campaigns (the same on every row of the run).",
        "plan_dual_bound": (
            "Upper bound on the plan's objective (expected incremental profit, less target_roi x cost in target_roi "
            "mode); same on every row."
        ),
        "plan_gap": (
            "Certified optimality gap, (plan_dual_bound - objective) / |plan_dual_bound|, a ratio (0.0003 = 0.03%)."
        ),
        "roi_low": "Lower end of the 90% interval of roi over the chosen households (the calibration draws).",
        "roi_high": "Upper end of the 90% interval of roi over the chosen households (the calibration draws).",
        "expected_incremental_profit_low": "Lower end of the 90% interval of expected_incremental_profit.",
        "expected_incremental_profit_high": "Upper end of the 90% interval of expected_incremental_profit.",
        "risk_quantile": (
            "planning.risk_quantile (e.g. 0.1) when planning.risk = quantile; null on a plan on expected profit."
        ),
        "risk_quantile_roi": (
            "The campaign's ROI at risk_quantile of the forecast draws over its chosen households (for one left out, "
            "when it was left out); null if not judged."
        ),
        "excluded_by_risk": (
            "True when the risk rule left the campaign out (ROI at the quantile below 0, or target_roi); null with "
            "planning.risk = expected."
        ),
        "plan_profit_low": (
            "Lower end of the 90% interval of the whole plan's expected incremental profit, all campaigns together "
            "(the calibration line shared, each campaign's own deviation independent); same on every row of the run; "
            "null for runs published before it existed."
        ),
        "plan_profit_high": "Upper end of the same interval of the whole plan's expected incremental profit.",
    },
    "gold.household_targeting": {
        "campaign_id": "Campaign of a pair the plan targets.",
        "household_id": "Household of a pair the plan targets.",
        "expected_incremental_gross_profit": (
            "Calibrated incremental gross profit of the pair (gold.household_scores.incremental_gross_profit), "
            "in the currency of the costs."
        ),
        "expected_cost": "Expected cost of the pair: contact cost + expected_redemptions x cost per redemption.",
        "expected_redemptions": "Calibrated expected number of redemptions of the pair.",
        "expected_incremental_profit": "expected_incremental_gross_profit - expected_cost.",
        "step_roi": (
            "Marginal ROI of the planner's move that admitted the pair, change in profit / change in cost (a "
            "ratio); null for forced pairs."
        ),
        "forced": "True when the pair was added only to meet the campaign's min_budget.",
        "in_overlap": IN_OVERLAP,
    },
    "gold.publication_log": {
        "run_date": "Run date published; one row per date.",
        "run_id": "The published run of the date: readers and the *_published views see only its rows.",
        "published_at": "When the run was recorded here (UTC): the moment readers switched to it.",
        "model_version": "Champion version the published run scored with.",
        "table_versions": "Delta version of each published table after the run wrote its slice: table -> version.",
        "rows": "Rows the run wrote to each published table: table -> rows.",
    },
    "gold.backtest_forecast": {
        **ROI_FORECAST,
        "run_date": "Past run date forecast again, from what was known that night.",
        "run_id": "The backtest run that wrote the row (32 hex digits); appended, never replaced.",
        "campaign_id": "Planned campaign (gold.campaign_plans) that starts on or after the past run date.",
        "model_version": "Champion at the time of the backtest whose forecast this is (not that night's model).",
        "backtested_at": "When the backtest made the forecast (UTC).",
    },
    "gold.forecast_accuracy": {
        "run_date": (
            "Past run date whose backtest forecast is judged; the latest backtest of the date replaces its rows."
        ),
        "run_id": "The backtest run whose forecast (gold.backtest_forecast) is judged.",
        "campaign_id": (
            "Forecast campaign that has since ended, had a target list and was not seen by the champion in training."
        ),
        "campaign_type": "Campaign type, from the forecast.",
        "start_date": "First day of the campaign window.",
        "end_date": "Last day of the campaign window, inclusive.",
        "audience": "Households of the forecast: the campaign's target list.",
        "forecast_incremental_revenue": (
            "The backtest forecast's incremental revenue (total spend) over the audience, in the currency of the "
            "costs."
        ),
        "forecast_incremental_revenue_low": (
            "Lower end of the forecast's 90% interval (its gross-profit interval / gross margin)."
        ),
        "forecast_incremental_revenue_high": (
            "Upper end of the forecast's 90% interval (its gross-profit interval / gross margin)."
        ),
        "realized_incremental_revenue": (
            "Realized effect: doubly robust ATT of the targeted households x audience, on the outcome the forecast "
            "values (gold.backtest_forecast.value_outcome); an estimate, not an observation."
        ),
        "realized_incremental_revenue_low": "Lower end of the realized effect's 95% household-bootstrap interval.",
        "realized_incremental_revenue_high": "Upper end of the realized effect's 95% household-bootstrap interval.",
        "naive_incremental_revenue": (
            "Naive targeted-minus-untargeted difference in total spend x audience: not an effect, shown to gauge "
            "selection."
        ),
        "error": "forecast_incremental_revenue - realized_incremental_revenue (positive: the forecast was too high).",
        "absolute_error": "|error|.",
        "interval_covers_realized": "True when the forecast's 90% interval holds the realized point.",
        "forecast_roi": "The backtest forecast's ROI, a ratio (0.09 = 9%).",
        "forecast_roi_low": "Lower end of the forecast ROI's 90% interval.",
        "forecast_roi_high": "Upper end of the forecast ROI's 90% interval.",
        "realized_roi": (
            "ROI the realized effect implies, a ratio: (gross margin x realized_incremental_revenue - realized_cost) "
            "/ realized_cost."
        ),
        "realized_roi_low": "realized_roi at the lower end of the realized interval.",
        "realized_roi_high": "realized_roi at the upper end of the realized interval.",
        "estimator": "How the realized effect was estimated, in words.",
        "model_version": "The champion that made the backtest forecast.",
        "evaluated_at": "When the comparison was written (UTC).",
        "realized_covers_forecast": "True when the realized effect's 95% interval holds the forecast point.",
        "intervals_overlap": "True when the forecast and realized intervals overlap.",
        "error_z": (
            "error in combined standard errors: error / sqrt(se_forecast^2 + se_realized^2), each from its "
            "interval's width."
        ),
        "consistent_at_90": "True when |error_z| <= 1.645: forecast and realized estimate agree at the 90% level.",
        "placebo_incremental_revenue": (
            "The realized estimator on the campaign's pre-period x audience: about 0 if unbiased; null when the "
            "pre-period is not observed."
        ),
        "placebo_incremental_revenue_low": "Lower end of the placebo's 95% household-bootstrap interval.",
        "placebo_incremental_revenue_high": "Upper end of the placebo's 95% household-bootstrap interval.",
        "forecast_redemptions": "Redemptions the forecast expected over the audience.",
        "realized_redemptions": "Redemptions of the campaign's coupons the targeted households made.",
        "forecast_cost": "The forecast's cost: contact + expected redemptions x cost per redemption.",
        "realized_cost": (
            "What the campaign cost: audience x contact cost + realized_redemptions x cost per redemption (costs "
            "from gold.campaign_plans)."
        ),
    },
}
