"""Descriptions the household feature tables share (silver.user_features, silver.training_examples)."""

from __future__ import annotations


def household_patterns(before: str, missing: str) -> tuple[tuple[str, str], ...]:
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


def household_columns(before: str, missing: str) -> dict[str, str]:
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


def demographic_columns(unknown: str) -> dict[str, str]:
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
