"""Selection-corrected (doubly robust) uplift evaluation: nuisance models and metrics."""
