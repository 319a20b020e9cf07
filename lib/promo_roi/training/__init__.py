"""Training step: examples, the petastorm loader, the network, the DDP loop, evaluation, MLflow."""
