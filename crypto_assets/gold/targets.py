"""Gold's targets: where the price is TARGET_HORIZONS trades later (the price, the return in percent, the
direction), and whether a row knows all of them (`is_training_ready`). The only values of a row that read
later trades; the last trades of a day read the first trades of the next (contracts.partitioning.DayHead).
"""

from __future__ import annotations

import numpy as np

from crypto_assets.contracts.partitioning import TARGET_HORIZONS
from crypto_assets.gold.windows import div, lead


def targets(p: np.ndarray) -> dict[str, np.ndarray]:
    """The target arrays of prices `p` in trade order (NaN = null) and the `is_training_ready` mask."""
    f: dict[str, np.ndarray] = {}
    ready = np.ones(len(p), dtype=bool)
    for m in TARGET_HORIZONS:
        fut = lead(p, m)
        f[f"future_price_{m}"] = fut
        tr = div(fut - p, p) * 100
        f[f"target_return_{m}"] = tr
        f[f"target_direction_{m}"] = np.where(tr > 0, 1.0, np.where(tr < 0, 0.0, np.nan))
        ready &= ~np.isnan(fut)
    f["is_training_ready"] = ready
    return f
