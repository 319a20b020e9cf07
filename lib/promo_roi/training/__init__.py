"""Training step: data loading (and later the model and the training loop)."""
