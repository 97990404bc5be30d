"""What an incremental step carries from one run of a (event day, product) partition to the next, kept as a
JSON table property `<prefix><day>|<product>` of the table it writes: committed with the rows, kept when
snapshots are expired, read without walking the history. Silver and Gold keep their states this way."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date

KEEP_DAYS = 7  # states of days this much older than the newest day holding one are dropped


def state_key(prefix: str, day: date, product: str) -> str:
    return f"{prefix}{day.isoformat()}|{product}"


def read_state_json(table, prefix: str, day: date, product: str) -> dict | None:
    text = table.properties.get(state_key(prefix, day, product))
    return json.loads(text) if text else None


def state_properties(prefix: str, states: dict) -> tuple[dict[str, str], list[str]]:
    """(properties to set, none to remove) recording `states` (product -> a dataclass with a `day`)."""
    return {state_key(prefix, date.fromisoformat(s.day), p): json.dumps(asdict(s), sort_keys=True)
            for p, s in states.items()}, []


def stale_states(table, prefix: str) -> tuple[dict[str, str], list[str]]:
    """(nothing to set, the states of days more than KEEP_DAYS before the newest day holding one)."""
    days = {k: date.fromisoformat(k[len(prefix):].split("|", 1)[0]) for k in table.properties if k.startswith(prefix)}
    newest = max(days.values(), default=None)
    return {}, [k for k, d in days.items() if (newest - d).days > KEEP_DAYS]
