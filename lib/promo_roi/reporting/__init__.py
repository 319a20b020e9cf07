"""Run reports: the published numbers of one scoring run as an HTML page with PNG charts (and in MLflow)."""
