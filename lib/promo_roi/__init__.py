"""promo-roi: incremental ROI forecasts and budget plans for retail promotions."""

__version__ = "0.1.0"
