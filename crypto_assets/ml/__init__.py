"""Training on Gold: reproducible training sets, purged walk-forward splits, the gradient-boosted baseline."""
