"""Gold: the per-trade features and targets of the feature catalog, and their checks."""
