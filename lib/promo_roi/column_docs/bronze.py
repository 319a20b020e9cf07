"""bronze: the Complete Journey source tables, the quarantine and the ingest audit."""

from __future__ import annotations

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
}
