"""Feed health from the Coinbase message format: sequence_num gaps, trade_id gaps, heartbeats, acks.

Knows the exchange's numbering, nothing about sockets or Kafka. `sequence_num` is one counter
per WebSocket connection across all channels, so a jump means messages were lost and cannot
be replayed; every message that carries one counts, whatever becomes of it (a dead-lettered
level2 frame too: `observe_sequence`). Per product, `trade_id` rises by exactly one per trade,
across connections, so trades lost while disconnected (beyond what the next `market_trades`
snapshot repeats) are counted too. Trades inside a message are newest first; they are checked
in id order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

log = logging.getLogger(__name__)

_NO_GAPS: tuple = ()


@dataclass(frozen=True)
class Gap:
    """Messages (kind "sequence") or trades (kind "trade_id") that never arrived."""

    kind: str
    first_missing: int
    last_missing: int
    connection_id: str
    product_id: str | None = None

    @property
    def size(self) -> int:
        return self.last_missing - self.first_missing + 1

    def describe(self) -> str:
        if self.kind == "sequence":
            return (
                f"sequence_num gap on connection {self.connection_id}: {self.first_missing}..{self.last_missing} "
                f"missing ({self.size} messages lost)"
            )
        return (
            f"trade_id gap {self.product_id}: {self.first_missing}..{self.last_missing} missing "
            f"({self.size} trades lost; connection {self.connection_id})"
        )


class FeedHealth:
    """Counts gaps and repeats in what one producer received; `observe` returns the new gaps."""

    def __init__(self) -> None:
        self.connection_id = ""
        self._next_seq: int | None = None
        self.last_trade_id: dict[str, int] = {}
        self.sequence_gaps = 0
        self.sequence_missing = 0
        self.sequence_out_of_order = 0
        self.trade_id_gaps: dict[str, int] = defaultdict(int)
        self.trades_missing: dict[str, int] = defaultdict(int)
        # Trades that arrived after their gap was counted (a later snapshot reached back far enough).
        self.trades_recovered: dict[str, int] = defaultdict(int)
        self._open_gaps: dict[str, list[list[int]]] = defaultdict(list)  # pid -> [[lo, hi], ...] still missing
        # Trades seen again: a snapshot after a reconnect repeats recent trades (expected, not a gap).
        self.snapshot_overlap: dict[str, int] = defaultdict(int)
        self.trade_id_repeats: dict[str, int] = defaultdict(int)
        self.bad_trade_ids = 0
        self.snapshots: dict[str, int] = defaultdict(int)
        self.heartbeats = 0
        self.last_heartbeat_counter: int | None = None
        self.subscriptions: dict[str, list[str]] = {}

    def start_connection(self, connection_id: str) -> None:
        """A new connection numbers its messages afresh; trade ids carry on across connections."""
        self.connection_id = connection_id
        self._next_seq = None
        self.subscriptions = {}

    def observe(self, msg: dict) -> tuple[Gap, ...] | list[Gap]:
        """Checks one parsed message (any channel); returns the gaps it revealed."""
        gaps = _NO_GAPS
        seq = msg.get("sequence_num")
        if seq is not None:
            gaps = self._sequence(seq)
        channel = msg.get("channel")
        if channel == "market_trades":
            trade_gaps = self._trades(msg)
            if trade_gaps:
                gaps = [*gaps, *trade_gaps]
        elif channel == "heartbeats":
            self._heartbeat(msg)
        elif channel == "subscriptions":
            self._subscriptions(msg)
        elif channel == "ticker":
            for event in msg.get("events") or ():
                if isinstance(event, dict) and event.get("type") == "snapshot":
                    self.snapshots["ticker"] += 1
        return gaps

    def observe_sequence(self, msg: dict) -> tuple[Gap, ...]:
        """Checks only the sequence_num of a message tracked no further (a dead letter); returns the gap it revealed."""
        seq = msg.get("sequence_num")
        return _NO_GAPS if seq is None else self._sequence(seq)

    # ---- sequence_num --------------------------------------------------------------------

    def _sequence(self, seq) -> tuple[Gap, ...]:
        if type(seq) is not int:
            try:
                seq = int(seq)
            except (TypeError, ValueError):
                return _NO_GAPS
        expected = self._next_seq
        if expected is None or seq == expected:
            # The first message of a connection sets the baseline: Coinbase starts at 0, but a
            # baseline taken from the data never reports a gap that did not happen.
            self._next_seq = seq + 1
            return _NO_GAPS
        if seq < expected:
            self.sequence_out_of_order += 1
            return _NO_GAPS
        gap = Gap("sequence", expected, seq - 1, self.connection_id)
        self.sequence_gaps += 1
        self.sequence_missing += gap.size
        self._next_seq = seq + 1
        return (gap,)

    # ---- trade_id ------------------------------------------------------------------------

    def _trades(self, msg: dict) -> list[Gap]:
        gaps: list[Gap] = []
        for event in msg.get("events") or ():
            if not isinstance(event, dict):
                continue
            trades = event.get("trades")
            if not isinstance(trades, list):
                continue
            snapshot = event.get("type") == "snapshot"
            if snapshot:
                self.snapshots["market_trades"] += 1
            ids_by_product: dict[str, list[int]] = {}
            for trade in trades:
                try:
                    pid = trade["product_id"]
                    tid = int(trade["trade_id"])
                except (KeyError, TypeError, ValueError):
                    self.bad_trade_ids += 1
                    continue
                ids = ids_by_product.get(pid)
                if ids is None:
                    ids_by_product[pid] = [tid]
                else:
                    ids.append(tid)
            for pid, ids in ids_by_product.items():
                if len(ids) > 1:
                    ids.sort()  # newest first on the wire; checked oldest first
                self._advance(pid, ids, snapshot, gaps)
        return gaps

    def _advance(self, pid: str, ids: list[int], snapshot: bool, gaps: list[Gap]) -> None:
        last = self.last_trade_id.get(pid)
        for tid in ids:
            if last is None or tid == last + 1:
                last = tid
            elif tid <= last:
                if self._open_gaps and self._fill(pid, tid):
                    self.trades_recovered[pid] += 1
                elif snapshot:
                    self.snapshot_overlap[pid] += 1
                else:
                    self.trade_id_repeats[pid] += 1
            else:
                gap = Gap("trade_id", last + 1, tid - 1, self.connection_id, pid)
                self.trade_id_gaps[pid] += 1
                self.trades_missing[pid] += gap.size
                gaps.append(gap)
                open_gaps = self._open_gaps[pid]
                open_gaps.append([gap.first_missing, gap.last_missing])
                if len(open_gaps) > 1000:  # ancient gaps will not be filled any more
                    del open_gaps[0]
                last = tid
        self.last_trade_id[pid] = last

    def _fill(self, pid: str, tid: int) -> bool:
        """Removes `tid` from the product's open gaps; True if it was missing."""
        ranges = self._open_gaps.get(pid)
        if not ranges:
            return False
        for i, (lo, hi) in enumerate(ranges):
            if lo <= tid <= hi:
                pieces = [r for r in ([lo, tid - 1], [tid + 1, hi]) if r[0] <= r[1]]
                ranges[i:i + 1] = pieces
                return True
        return False

    # ---- heartbeats and acknowledgements -------------------------------------------------

    def _heartbeat(self, msg: dict) -> None:
        self.heartbeats += 1
        for event in msg.get("events") or ():
            if isinstance(event, dict) and "heartbeat_counter" in event:
                try:  # a number on the live feed, a string in older captures
                    self.last_heartbeat_counter = int(event["heartbeat_counter"])
                except (TypeError, ValueError):
                    pass

    def _subscriptions(self, msg: dict) -> None:
        # Acknowledgements are cumulative: the latest one says what this connection receives.
        for event in msg.get("events") or ():
            subs = event.get("subscriptions") if isinstance(event, dict) else None
            if isinstance(subs, dict):
                self.subscriptions = {k: list(v) if isinstance(v, list) else [] for k, v in subs.items()}

    def missing_subscriptions(self, wanted: dict[str, list[str]]) -> dict[str, list[str]]:
        """What `wanted` (channel -> product ids; [] for none) the acknowledgements do not cover yet."""
        missing = {}
        for channel, products in wanted.items():
            have = self.subscriptions.get(channel)
            if have is None:
                missing[channel] = list(products)
                continue
            lacking = [p for p in products if p not in have]
            if lacking:
                missing[channel] = lacking
        return missing

    # ---- totals ----------------------------------------------------------------------------

    @property
    def trade_id_gap_count(self) -> int:
        return sum(self.trade_id_gaps.values())

    @property
    def trades_missing_count(self) -> int:
        return sum(self.trades_missing.values())

    @property
    def trades_still_missing(self) -> dict[str, int]:
        """Per product: trades counted missing that never arrived afterwards."""
        return {p: n - self.trades_recovered.get(p, 0) for p, n in self.trades_missing.items()}
