"""What the baseline reports: materialization metadata, the declared leakage canaries and their results."""

from __future__ import annotations

from crypto_assets.contracts.reporting import CheckReport, Metadata
from crypto_assets.ml.baseline import CANARY_TOLERANCE, BaselineResult

# check name -> (blocking, description), as for the layers.
BASELINE_CHECKS: dict[str, tuple[bool, str]] = {
    "shuffled_target_canary": (False, f"The same split and training with target_direction_50 shuffled across the "
                                      f"window score AUC within 0.5 +/- {CANARY_TOLERANCE}; otherwise the split or the "
                                      f"evaluation leaks."),
    "suspicious_score": (False, "The walk-forward AUC stays at or below CRYPTO_BASELINE_SUSPICIOUS_AUC (default 0.75); "
                                "a trade-level direction model scoring above it usually reads the future. Fails naming "
                                "the features that carry the score."),
}


def _calibration_markdown(bins: list[dict]) -> str:
    lines = ["| predicted | rows | mean predicted | observed up |", "|---|---|---|---|"]
    lines += [f"| {b['bin']} | {b['rows']} | {b['mean_predicted'] if b['rows'] else '-'} | "
              f"{b['observed_up'] if b['rows'] else '-'} |" for b in bins]
    return "\n".join(lines)


def baseline_report(r: BaselineResult) -> tuple[Metadata, list[CheckReport]]:
    c = r.classifier
    metadata: Metadata = {
        "rows": ("int", r.rows["train_rows"] + r.rows["test_rows"]),
        "test_day": ("text", r.day),
        "train_days": ("json", r.train_days),
        "products": ("json", r.products),
        "auc": ("text", f"{c['auc']:.4f}"),
        "log_loss": ("text", f"{c['log_loss']:.4f}"),
        "accuracy": ("text", f"{c['accuracy']:.4f}"),
        "majority_class_accuracy": ("text", f"{c['majority_accuracy']:.4f} (always {c['majority_class']}, the training "
                                            f"days' majority)"),
        "ic_spearman": ("text", f"{r.regressor['ic_spearman']:.4f}"),
        "calibration": ("md", _calibration_markdown(c["calibration"])),
        "top_features_by_gain": ("json", r.top_features),
        "rows_used": ("json", {k: v for k, v in r.rows.items() if k != "per_day"}),
        "rows_per_day": ("json", r.rows["per_day"]),
        "shuffled_target_auc": ("text", f"{r.canary_auc:.4f}"),
        "gold_table": ("text", r.gold_table),
        "gold_snapshot_ids": ("json", r.gold_snapshot_ids),
        "feature_catalog_version": ("text", r.feature_catalog_version),
        "model_uri": ("text", r.model_uri),
        "model_sha256": ("json", r.model_sha256),
        "seconds": ("json", r.seconds),
    }
    carried = ", ".join(f"{x['feature']} ({x['gain_share']:.0%} of the gain, AUC alone {x['auc_alone']:.3f})"
                        for x in r.carriers)
    checks = [
        CheckReport("shuffled_target_canary", r.canary_passed, metadata={
            "shuffled_target_auc": ("text", f"{r.canary_auc:.4f}"),
            "allowed": ("text", f"0.5 +/- {CANARY_TOLERANCE}")}),
        CheckReport("suspicious_score", not r.suspicious, metadata={
            "auc": ("text", f"{c['auc']:.4f}"), "bound": ("text", f"{r.suspicious_auc}"),
            "carried_by": ("text", carried if r.suspicious else ""),
            "carriers": ("json", r.carriers)}),
    ]
    return metadata, checks
