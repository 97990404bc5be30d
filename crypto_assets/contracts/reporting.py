"""What a build step reports, in a form both the Dagster assets and the Glue jobs send: metadata
as (type, value) pairs and check results. Each layer's `report.py` builds them; the assets turn
them into Dagster's types (`orchestration/reporting.py`), the Glue jobs send them through Pipes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# name -> (metadata type, value); the types are Dagster Pipes' names ("int", "json", "md", ...).
Metadata = dict[str, tuple[str, object]]


@dataclass(frozen=True)
class CheckReport:
    """One asset check result: WARN marks a failure worth a look, not a broken partition."""

    name: str
    passed: bool
    severity: Literal["ERROR", "WARN"] = "ERROR"
    metadata: Metadata = field(default_factory=dict)


def preview_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
