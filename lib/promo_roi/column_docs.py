"""The catalogue's column descriptions: what every column of every warehouse table means, in plain words.

Declared once per table, beside the schemas of :mod:`promo_roi.tables` (which
imports this module, so this one imports nothing of the project);
``promo-roi describe TABLE`` shows them and they become the Delta column
comments. Each description says what the value is, its unit, the time window
it covers and where it comes from, in the terms of docs/glossary.md.

Conventions the descriptions rely on:

- an as-of date or run date D is the first day *not* observed: data dated
  before D may be used, nothing on or after it;
- spend is sales value (``bronze.transactions.sales_value``), in the source
  currency; money in the gold tables is in the currency of the costs (both US
  dollars for Complete Journey);
- ROI, marginal ROI and other ratios are stored as ratios, never percent:
  ``roi`` 0.09 is 9%;
- "per household" means per (household, campaign) pair.

Columns generated from the configuration (``features.rfm_windows_weeks``,
``features.spend_departments``) are described by the regular expressions of
:data:`PATTERNS`, so a configuration with other windows or departments is
described too.
"""

from __future__ import annotations

import re

# Columns that mean the same in every table that has them (a table's own entry overrides).
COMMON: dict[str, str] = {
    "household_id": "Complete Journey household identifier (the id in bronze.transactions).",
    "campaign_id": "Campaign identifier (1-27 in Complete Journey; planners may add others in gold.campaign_plans).",
    "product_id": "Product identifier (bronze.products).",
    "store_id": "Store identifier.",
    "as_of_date": (
        "The as-of date: the first day not observed. The row uses only data dated before it (point in time)."
    ),
    "run_date": (
        "The scoring night's run date: the first day not observed. The night used silver.user_features as of it "
        "and only data dated before it."
    ),
    "run_id": (
        "The scoring run that wrote the row: 'r', its UTC start time, then 12 hex digits (ids sort by start). "
        "Readers see only the run in gold.publication_log."
    ),
    "model_version": (
        "Version of the registered model (training.registered_model) that made the predictions: the champion the "
        "run scored with."
    ),
    "mlflow_run_id": (
        "The MLflow run of the training (jobs/train.py) that wrote the row; each training run keeps its own rows. "
        "Not a scoring run_id."
    ),
}


# --- shared descriptions ---------------------------------------------------------------------------------


def _household_patterns(before: str, missing: str) -> tuple[tuple[str, str], ...]:
    """The generated household features (one set per RFM window, one column per listed department), counted
    before ``before``; ``missing`` is what an average or share holds when there is nothing to divide."""
    return (
        (r"baskets_(\d+)w",
         "Baskets (shopping trips) of the household in the {0}-week window (7 x {0} days) before " + before + "."),
        (r"spend_(\d+)w",
         "Total spend (sales value) of the household in the {0}-week window before " + before
         + ", in the source currency."),
        (r"avg_basket_spend_(\d+)w",
         "Average spend per basket in the {0}-week window before " + before + ": spend_{0}w / baskets_{0}w; "
         + missing + " when the household had no basket in that window."),
        (r"dept_spend_(?!other$)(\w+)",
         "Spend (sales value) on department {0.words} (features.spend_departments; punctuation shown as spaces) "
         "over the longest RFM window (26 weeks by default) before " + before + "."),
    )


def _household_columns(before: str, missing: str) -> dict[str, str]:
    """The fixed household features (silver.user_features' builder), counted before ``before``."""
    return {
        "days_since_last_purchase": (
            "Days since the household's last purchase, counted to " + before
            + " (1 = it bought the day before); null when it had none."
        ),
        "dept_spend_other": (
            "Spend (sales value) on departments not in features.spend_departments, or without one, over the longest "
            "RFM window (26 weeks by default) before " + before + "."
        ),
        "retail_discount_spend_share": (
            "Share (0-1) of the household's spend over the longest RFM window (26 weeks by default) before " + before
            + " on lines with a loyalty-card discount; " + missing + " without spend."
        ),
        "coupon_discount_spend_share": (
            "Share (0-1) of the household's spend over the longest RFM window (26 weeks by default) before " + before
            + " on lines with a coupon or coupon-match discount; " + missing + " without spend."
        ),
        "campaigns_targeted": (
            "Campaigns that had the household on their target list and started before " + before + "."
        ),
        "campaigns_redeemed": (
            "Campaigns of which the household redeemed at least one coupon before " + before + "."
        ),
        "coupons_redeemed": "Coupon redemptions of the household before " + before + ", all campaigns.",
        "days_since_last_redemption": (
            "Days from the household's last coupon redemption to " + before + "; null when it never redeemed before."
        ),
    }


def _demographic_columns(unknown: str) -> dict[str, str]:
    """bronze.demographics' columns in a feature table; ``unknown`` says when they read 'unknown'."""
    return {
        "age": "Estimated age range of the household (bronze.demographics), e.g. 25-34; " + unknown,
        "income": "Household income range (bronze.demographics), e.g. 50-74K; " + unknown,
        "home_ownership": "Homeowner, Probable Homeowner, Renter or Probable Renter (bronze.demographics); " + unknown,
        "marital_status": "Married or Unmarried (bronze.demographics); " + unknown,
        "household_size": "Number of people in the household, 1 to 5+ (bronze.demographics); " + unknown,
        "household_comp": "Household composition, e.g. 2 Adults Kids (bronze.demographics); " + unknown,
        "kids_count": "Number of children in the household, 0 to 3+ (bronze.demographics); " + unknown,
    }


_ROI_FORECAST: dict[str, str] = {
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
        "Forecast extra total spend the campaign causes over the audience in its window: a x audience + "
        "b x sum(uplift_spend) (the calibration), in the currency of the costs."
    ),
    "incremental_coupon_product_revenue": (
        "The same calibrated forecast on coupon-product spend; for reference only, it feeds neither the ROI nor "
        "the plan."
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
        "How the interval was made, in words: level, bootstrap draws, held-out campaigns, between-campaign sd, and "
        "Monte Carlo dropout draws if any."
    ),
    "input_versions": (
        "Delta version of each table the forecast read (bronze at the audited snapshot, silver.user_features, "
        "gold.campaign_plans): table -> version."
    ),
}


# table full name -> column -> description
TABLES: dict[str, dict[str, str]] = {
    # --- bronze: the Complete Journey source tables -------------------------------------------------------
    "bronze.products": {
        "product_id": "Product identifier, one row per product.",
        "manufacturer_id": "Identifier of the product's manufacturer.",
        "department": "Top level of the product hierarchy, upper case as in the source (e.g. GROCERY, DRUG GM).",
        "brand": "National (a manufacturer's brand) or Private (the retailer's own label).",
        "product_category": "Middle level of the product hierarchy, below department (e.g. FRZN ICE); may be null.",
        "product_type": "Lowest level of the product hierarchy, below product_category; may be null.",
        "package_size": "Package size as free text (e.g. 22 LB); null where the source has none.",
    },
    "bronze.campaign_descriptions": {
        "campaign_id": "Campaign identifier, 1-27 in Complete Journey; one row per campaign.",
        "campaign_type": "Type A, Type B or Type C, as the source labels the campaign.",
        "start_date": "First day of the campaign window: its coupons are valid from this day (midnight timestamp).",
        "end_date": "Last day of the campaign window, inclusive: its coupons are valid until this day.",
    },
    "bronze.transactions": {
        "store_id": "Store where the basket was bought.",
        "basket_id": "One shopping trip (purchase occasion): every line of one receipt shares it.",
        "quantity": "Units of the product bought on this line.",
        "sales_value": (
            "Amount the retailer receives for the line, in US dollars (the source currency): what spend sums "
            "everywhere."
        ),
        "retail_disc": (
            "Loyalty-card discount the retailer gave on the line, a positive amount in US dollars (0: none)."
        ),
        "coupon_disc": "Manufacturer coupon discount on the line, a positive amount in US dollars (0: none).",
        "coupon_match_disc": (
            "The retailer's match of a manufacturer coupon on the line, a positive amount in US dollars (0: none)."
        ),
        "week": (
            "Week of the purchase, 1-53; weeks run Monday to Monday and week 1 is the stub ending on "
            "source.week_one_end (2017-01-02)."
        ),
        "transaction_timestamp": (
            "Date and time of the purchase (store wall-clock time); its date decides which as-of dates may use the "
            "line."
        ),
    },
    "bronze.demographics": {
        "household_id": "Household that shared its demographics (801 of the 2,469 Complete Journey households).",
        "age": "Estimated age range of the household, e.g. 25-34 or 65+.",
        "income": "Household income range, e.g. Under 15K, 50-74K, 250K+.",
        "home_ownership": "Homeowner, Probable Homeowner, Renter or Probable Renter; null where unknown.",
        "marital_status": "Married or Unmarried; null where unknown.",
        "household_size": "Number of people in the household, 1 to 5+ (text).",
        "household_comp": "Household composition: 1 or 2 adults, with or without kids (e.g. 2 Adults Kids).",
        "kids_count": "Number of children in the household, 0 to 3+ (text).",
    },
    "bronze.campaigns": {
        "campaign_id": "Campaign whose target list includes the household.",
        "household_id": (
            "Household on the campaign's target list: chosen by the retailer to receive it (a targeted household)."
        ),
    },
    "bronze.coupons": {
        "coupon_upc": "UPC code of the coupon.",
        "product_id": "A product the coupon can be redeemed on (one row per coupon, product and campaign).",
        "campaign_id": "Campaign that distributed the coupon.",
    },
    "bronze.coupon_redemptions": {
        "household_id": "Household that redeemed the coupon.",
        "coupon_upc": "UPC code of the redeemed coupon (bronze.coupons).",
        "campaign_id": "Campaign the redeemed coupon belongs to.",
        "redemption_date": "Day the coupon was redeemed (midnight timestamp).",
    },
    "bronze.promotions": {
        "product_id": "Product placed on display or in the mailer.",
        "store_id": "Store of the placement.",
        "display_location": (
            "In-store display code: '0' not on display; 1-9 or A a display location (e.g. 1 store front, "
            "3 front end cap, 7 in-aisle)."
        ),
        "mailer_location": (
            "Weekly mailer code: '0' not in the mailer; a letter for the placement (e.g. A interior page feature, "
            "D front page feature)."
        ),
        "week": (
            "Week of the placement, 1-53 (bronze.transactions' week calendar); features count a week only once it "
            "has ended."
        ),
    },
    "bronze.quarantine": {
        "source_table": "Source table the refused row came from (e.g. transactions).",
        "reason": (
            "First data-quality rule the row broke, e.g. null_key(product_id), unknown_product, exact_duplicate, "
            "nonpositive_quantity_with_sales."
        ),
        "record": "The refused row as JSON, every source column included (nulls kept).",
    },
    "bronze.ingest_audit": {
        "source_table": "Source table audited: one row per table, from its latest ingest.",
        "source_path": "File the ingest read (<source directory>/<table>.parquet).",
        "rows_read": "Rows in the source file; always rows_written + rows_quarantined.",
        "rows_written": "Rows the bronze table holds after the ingest, counted back from Delta.",
        "rows_quarantined": "Rows the ingest moved to bronze.quarantine.",
        "quarantined_by_reason": "Quarantined rows per data-quality rule: reason -> rows (empty when none).",
        "table_version": (
            "Delta version of the bronze table this ingest wrote: the version features, training, scoring and "
            "backtests read."
        ),
        "ingested_at": "When the ingest wrote this audit row, its last step (UTC).",
    },
    # --- silver: point-in-time features -------------------------------------------------------------------
    "silver.user_features": {
        "as_of_date": (
            "First day not observed: values use transactions and redemptions dated before it and campaigns that "
            "started before it."
        ),
        "household_id": "Household with at least one purchase before as_of_date.",
        "first_purchase_date": "Date of the household's first purchase in the data (before as_of_date).",
        **_household_columns("as_of_date", "null"),
        "has_demographics": (
            "True when the household is in bronze.demographics; false for those that shared none "
            "(1,668 of 2,469 in Complete Journey)."
        ),
        **_demographic_columns("'unknown' where the household shared none (or the field is empty)."),
    },
    "silver.item_features": {
        "as_of_date": (
            "First day not observed: sales use transactions dated before it, promotions only weeks that ended "
            "before it."
        ),
        "product_id": "Product: every row of bronze.products, sold or not.",
        "manufacturer_id": "Manufacturer of the product (bronze.products).",
        "department": "Department of the product (bronze.products).",
        "brand": "National or Private label (bronze.products).",
        "product_category": "Product category (bronze.products).",
        "product_type": "Product type (bronze.products).",
        "package_size": "Package size as free text (bronze.products).",
        "item_text": (
            "What the transformer reads about the product, lower case: department / category / type / "
            "'<brand> brand' / size."
        ),
        "units_sold": "Units of the product sold before as_of_date, all households and stores.",
        "sales_value": "Sales value of the product before as_of_date, in the source currency.",
        "households": "Distinct households that bought the product before as_of_date.",
        "avg_unit_price": (
            "Average price paid per unit before as_of_date: sales value / quantity over lines with a positive "
            "quantity; null when never sold."
        ),
        "weeks_sold": "Distinct weeks (bronze.transactions.week) with a sale of the product before as_of_date.",
        "display_weeks": (
            "Weeks ended before as_of_date in which the product was on an in-store display in at least one store."
        ),
        "mailer_weeks": (
            "Weeks ended before as_of_date in which the product was in the weekly mailer of at least one store."
        ),
        "sales_on_display": (
            "Sales value of the product in the stores and weeks it was on display (weeks ended before as_of_date)."
        ),
        "sales_in_mailer": (
            "Sales value in the stores and weeks it was in the mailer (weeks ended before as_of_date); overlaps "
            "sales_on_display."
        ),
        "sales_unpromoted": (
            "Sales value in the stores and weeks it had neither display nor mailer (weeks ended before as_of_date)."
        ),
    },
    "silver.campaign_features": {
        "as_of_date": "First day not observed: status and the type's past campaigns are as known before it.",
        "campaign_id": "Campaign: every row of bronze.campaign_descriptions.",
        "campaign_type": "Type A, Type B or Type C (bronze.campaign_descriptions).",
        "start_date": "First day of the campaign window.",
        "end_date": "Last day of the campaign window, inclusive.",
        "duration_days": "Length of the campaign window in days, both ends included.",
        "status": (
            "planned (starts on or after as_of_date), ended (ended before as_of_date) or running (in between)."
        ),
        "targeted_households": "Households on the campaign's target list (known in advance).",
        "coupons": "Distinct coupons (UPCs) of the campaign.",
        "coupon_products": "Distinct products the campaign's coupons cover.",
        "coupon_departments_text": (
            "Departments of the coupon products, most products first (up to 15), lower case, comma-separated; "
            "empty when none."
        ),
        "coupon_categories_text": (
            "Product categories of the coupon products, most products first (up to 15), lower case, "
            "comma-separated; empty when none."
        ),
        "type_past_campaigns": "Campaigns of the same type, with a target list, that ended before as_of_date.",
        "type_past_redemption_rate": (
            "Share (0-1) of targeted household x campaign pairs with a redemption, over campaigns of this type "
            "ended before as_of_date; null when none."
        ),
        "starts_before_data": "True when the campaign starts before the data's first day (source.data_start).",
        "ends_after_data": "True when the campaign ends after the data's last day (source.data_end).",
    },
    "silver.campaign_exposures": {
        "as_of_date": (
            "First day not observed: campaigns that started before it, windows clipped to the day before it."
        ),
        "household_id": (
            "Household that bought before as_of_date or is on the target list of a campaign started before it."
        ),
        "campaign_id": "Campaign that started before as_of_date.",
        "campaign_type": "Type A, Type B or Type C.",
        "targeted": (
            "True when the household is on the campaign's target list (bronze.campaigns); false rows are the "
            "untargeted comparison."
        ),
        "start_date": "First day of the campaign window.",
        "end_date": "Last day of the campaign window, inclusive.",
        "duration_days": "Length of the campaign window in days; the pre-period is as many days before start_date.",
        "observed_days": (
            "Days of the campaign window inside the data and before as_of_date; fewer than duration_days means "
            "censored."
        ),
        "pre_observed_days": (
            "Days of the pre-period (the duration_days before start_date) inside the data and before as_of_date."
        ),
        "censored": "True when the campaign window is clipped (observed_days < duration_days): it never trains.",
        "censor_reason": (
            "Why the window is clipped, comma-separated: starts_before_data, ends_after_data, ends_after_as_of; "
            "null when not clipped."
        ),
        "pre_spend": "Household's total spend in the observed pre-period, in the source currency.",
        "pre_coupon_product_spend": (
            "Household's spend on the campaign's coupon products in the observed pre-period, in the source currency."
        ),
        "spend": (
            "Household's total spend in the observed campaign window, in the source currency (the total-spend "
            "outcome)."
        ),
        "coupon_product_spend": (
            "Household's spend on the campaign's coupon products in the observed campaign window (the primary "
            "outcome)."
        ),
        "redemptions": "Redemptions of this campaign's coupons by the household, dated before as_of_date.",
        "redeemed": "True when redemptions > 0: the redemption outcome.",
        "coupon_cost": (
            "Coupon discount (manufacturer + retailer match) on the campaign's coupon products in the observed window; "
            "an upper bound when several campaigns cover a product."
        ),
    },
    "silver.training_examples": {
        "as_of_date": (
            "The training as-of date: only campaigns fully observed before it (ended, window not censored) are in "
            "the slice."
        ),
        "household_id": "Household of the exposure (silver.campaign_exposures as of as_of_date).",
        "campaign_id": "A fully observed campaign.",
        "start_date": (
            "First day of the campaign window: household and campaign features are as of this day (data dated "
            "before it)."
        ),
        "end_date": "Last day of the campaign window, inclusive.",
        "split": (
            "train, validation or test: by start date the last training.test_campaigns are test, the "
            "training.validation_campaigns before them validation."
        ),
        "targeted": "True when the household was on the campaign's target list (the arm).",
        "redeemed": "Outcome: the household redeemed at least one of the campaign's coupons.",
        "redemptions": "Outcome: redemptions of the campaign's coupons by the household.",
        "coupon_product_spend": (
            "Outcome: spend on the campaign's coupon products in the campaign window, in the source currency "
            "(the primary outcome)."
        ),
        "spend": "Outcome: the household's total spend in the campaign window, in the source currency.",
        "coupon_cost": (
            "Coupon discount (manufacturer + retailer match) on the campaign's coupon products in the window; an "
            "upper bound when several campaigns cover a product."
        ),
        "campaign_text": (
            "What the transformer reads about the campaign, lower case: type, length in days, coupon departments and "
            "categories as of its start."
        ),
        **_household_columns("the campaign's start_date", "0"),
        "pre_spend": (
            "Household's total spend in the pre-period (the duration_days before start_date), in the source "
            "currency."
        ),
        "pre_coupon_product_spend": (
            "Household's spend on the campaign's coupon products in the pre-period; the heuristic baseline ranks by "
            "it."
        ),
        "pre_observed_share": "Share (0-1) of the pre-period inside the data: pre_observed_days / duration_days.",
        "concurrent_campaigns": (
            "Other campaigns targeting the household whose windows overlap this campaign's (known target lists)."
        ),
        "concurrent_shared_product_campaigns": (
            "Of concurrent_campaigns, those sharing at least one coupon product with this campaign."
        ),
        "duration_days": "Length of the campaign window in days, both ends included.",
        "coupons": "Distinct coupons (UPCs) of the campaign.",
        "coupon_products": "Distinct products the campaign's coupons cover.",
        "type_past_redemption_rate": (
            "Share (0-1) of targeted pairs with a redemption, over campaigns of this type that ended before this "
            "one's start; null when none."
        ),
        **_demographic_columns("'unknown' where not shared or the household had not bought before the start."),
        "has_demographics": (
            "'true' when the household shared demographics and had bought before the start, else 'false' (text: "
            "a category for the model)."
        ),
        "campaign_type": "Type A, Type B or Type C (a category for the model).",
    },
    # --- gold: what training publishes --------------------------------------------------------------------
    "gold.model_evaluation": {
        "as_of_date": "As-of date of the training run: its campaigns were fully observed before it.",
        "model_name": (
            "transformer, lgbm_t_learner or heuristic_pre_spend; doubly_robust and naive_difference for the "
            "average-effect rows."
        ),
        "split": (
            "Held-out campaigns judged: validation or test; heldout (both pooled) for the calibration rows."
        ),
        "scope": (
            "overall (all rows), overlap (propensity inside evaluation.overlap_band, [0.1, 0.9]) or calibration."
        ),
        "outcome": "redeemed, coupon_product_spend or spend; redemptions (the count) for calibration rows.",
        "metric": (
            "auc, wape, qini, auuc, mean_predicted_uplift or average_effect; calibration rows: calibration_intercept, "
            "calibration_slope, calibration_ratio, between_campaign_sd."
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
            "placebo (the campaigns moved back by their duration: the real pre-period must show no effect) or "
            "stability (two random household halves must agree)."
        ),
        "outcome": "coupon_product_spend (the one the champion gate uses) or spend.",
        "passed": (
            "Placebo: interval covers 0 or |effect| <= evaluation.placebo_tolerance x |real effect|; stability: "
            "halves within evaluation.stability_z combined standard errors."
        ),
        "effect": (
            "The model's DR effect per household (outcome units; test campaigns, overlap band): on the fake window "
            "for placebo, on half A for stability."
        ),
        "ci_low": "Lower end of effect's 95% household-bootstrap interval.",
        "ci_high": "Upper end of effect's 95% household-bootstrap interval.",
        "reference_effect": "Placebo: the model's DR effect on the real test window; stability: half B's effect.",
        "naive_effect": (
            "Placebo: naive targeted-minus-untargeted difference on the fake window (not an effect); null for "
            "stability."
        ),
        "detail": "The verdict in words, with the rows the check used.",
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
        "model_name": "transformer, lgbm_t_learner or heuristic_pre_spend.",
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
            "coupon_product_spend_targeted - coupon_product_spend_untargeted: raw uplift, a ranking score, not a "
            "level to sum."
        ),
        "uplift_spend": (
            "spend_targeted - spend_untargeted: raw total-spend uplift; calibrated_uplift_spend is the level to use."
        ),
        "incremental_gross_profit": (
            "Expected incremental gross profit of this household for this campaign: calibrated_uplift_spend x gross "
            "margin (scoring.gross_margin), in the currency of the costs."
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
    },
    "gold.campaign_roi_forecast": dict(_ROI_FORECAST),
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
            "Calibrated incremental total spend of the chosen households, in the currency of the costs."
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
        **_ROI_FORECAST,
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
            "Realized effect: doubly robust ATT on total spend of the targeted households x audience; an estimate, "
            "not an observation."
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

# Household features generated from the configuration; silver.user_features and silver.training_examples
# carry the same columns, counted before as_of_date and before each campaign's start respectively.
_USER_FEATURE_PATTERNS = _household_patterns("as_of_date", "null")
_TRAINING_EXAMPLE_PATTERNS = _household_patterns("the campaign's start_date", "0")

# table full name -> [(regex matching a generated column name, description template using the regex groups as
# {0}, {1}, ...; {0.words} is group 0 in upper case with spaces for '_', e.g. a department's name)]
PATTERNS: dict[str, tuple[tuple[str, str], ...]] = {
    "silver.user_features": _USER_FEATURE_PATTERNS,
    "silver.training_examples": _TRAINING_EXAMPLE_PATTERNS,
}


class _Group(str):
    """A matched group as a template field: itself (``{0}``) or ``{0.words}``, 'drug_gm' -> 'DRUG GM'."""

    @property
    def words(self) -> str:
        return self.replace("_", " ").upper()


def column_description(table: str, column: str) -> str | None:
    """TABLES entry, else the first PATTERNS match (template formatted with the groups; fullmatch), else COMMON,
    else None."""
    own = TABLES.get(table, {})
    if column in own:
        return own[column]
    for pattern, template in PATTERNS.get(table, ()):
        match = re.fullmatch(pattern, column)
        if match:
            return template.format(*(_Group(group or "") for group in match.groups()))
    return COMMON.get(column)
