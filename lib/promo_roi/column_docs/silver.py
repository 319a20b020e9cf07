"""silver: the point-in-time feature tables and the training examples."""

from __future__ import annotations

from promo_roi.column_docs.shared import demographic_columns, household_columns

TABLES: dict[str, dict[str, str]] = {
    # --- silver: point-in-time features -------------------------------------------------------------------
    "silver.user_features": {
        "as_of_date": (
            "First day not observed: values use transactions and redemptions dated before it and campaigns that "
            "started before it."
        ),
        "household_id": "Household with at least one purchase before as_of_date.",
        "first_purchase_date": "Date of the household's first purchase in the data (before as_of_date).",
        **household_columns("as_of_date", "null"),
        "has_demographics": (
            "True when the household is in bronze.demographics; false for those that shared none "
            "(1,668 of 2,469 in Complete Journey)."
        ),
        **demographic_columns("'unknown' where the household shared none (or the field is empty)."),
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
    "silver.item_store_week": {
        "product_id": "Product (bronze.products).",
        "store_id": "Store.",
        "week": (
            "Week of the data (bronze.transactions.week), ended before the as-of date of the build that wrote it; "
            "rows never change once written."
        ),
        "week_end_date": "Date on which the week is complete (source.week_one_end + 7 x (week - 1)).",
        "units": "Units of the product sold in the store in the week (0: placed and sold nothing).",
        "sales_value": "Sales value of those units, what households paid, in the source currency.",
        "discount_value": "Store discount on those units (retail_disc): the shelf price less what was paid.",
        "shelf_value": "Sales value + store discount: the units at shelf price.",
        "discount_depth": "Store discount / shelf value: the share taken off the shelf price; null when nothing sold.",
        "lines": "Transaction lines of the product in the store and week.",
        "on_display": "True when the product had an in-store display in the store that week (display_locations).",
        "in_mailer": "True when the product was in the store's weekly mailer that week (mailer_locations).",
        "display_locations": (
            "Display location codes of the week, sorted, '0' left out (lib/promo_roi/promotion_codes.py; "
            "two where the data place the product twice); empty when not on display."
        ),
        "mailer_locations": (
            "Mailer location codes of the week, sorted, '0' left out (lib/promo_roi/promotion_codes.py); empty "
            "when not in the mailer."
        ),
        "first_sale_week": (
            "First week the product sold in the store: placements before it are not rows (the product may not "
            "have been stocked)."
        ),
    },
    "silver.item_store_week_features": {
        "product_id": "Product (bronze.products).",
        "store_id": "Store.",
        "week": "The week these features describe the start of: every value reads earlier weeks only.",
        "product_category": "Product category (bronze.products).",
        "weeks_since_first_sale": "Weeks since the product first sold in the store (0: it first sold this week).",
        "week_of_year": "Week of the year, 1-52 (week 53 of the data is week 1 of the next year).",
        "baseline_units": (
            "Units per unplaced week over the 8 weeks before, from the first sale on; a week without a row "
            "counts as unplaced and 0 units. Null when no such week."
        ),
        "unplaced_weeks": "Weeks of that window, from the first sale on, without a display or mailer placement.",
        "placed_weeks": "Weeks of that window with a display or mailer placement.",
        "shelf_price": "Shelf value per unit sold over the 8 weeks before; null when none sold.",
        "discount_depth_before": "Store discount / shelf value over the 8 weeks before; null when none sold.",
        "weeks_since_last_placement": "Weeks since the product was last on display or in the mailer in the store.",
        "last_placement_units": "Units sold in the store in that last placed week.",
        "last_placement_baseline_units": "baseline_units of that last placed week: what it sold against.",
        "last_placement_lift": (
            "last_placement_units / last_placement_baseline_units: the product's own last promotion's lift "
            "(null without a baseline)."
        ),
        "category_units_before": "Units of the product's category in the store over the 8 weeks before.",
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
        "history_text": (
            "The household's purchases before start_date as text: its features.history_categories largest "
            "product categories by spend in the features.history_weeks before it, with their shares; 'no "
            "purchases in the last N weeks.' if none."
        ),
        **household_columns("the campaign's start_date", "0"),
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
        **demographic_columns("'unknown' where not shared or the household had not bought before the start."),
        "has_demographics": (
            "'true' when the household shared demographics and had bought before the start, else 'false' (text: "
            "a category for the model)."
        ),
        "campaign_type": "Type A, Type B or Type C (a category for the model).",
    },
}
