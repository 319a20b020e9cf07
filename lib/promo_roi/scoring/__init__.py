"""Nightly scoring: plans, the model inputs on the run date, distributed inference, publication."""
