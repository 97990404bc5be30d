"""Kafka sending spread over worker processes, for offline sources that outrun one Python thread.

kafka-python spends ~30 us of pure-Python work per record (batch encoding, futures), which
alone caps one interpreter near 25,000 records/s. Replay does its own reading, routing and
gap counting in the main process (so feed health is exact) and hands records in batches to
worker processes, each with its own `KafkaSink`. Every (topic, key) always goes to the same
worker, so per-product order in each Kafka partition holds. The buffer bound applies to the
records not yet acknowledged across all workers; when it is reached, the caller waits.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections

from producer.kafka_sink import SinkUnavailableError
from producer.routing import KafkaRecord
from producer.sink_accounting import LossLedger, SinkStats

log = logging.getLogger(__name__)

_BATCH, _FLUSH, _CLOSE = b"B", b"F", b"C"


def _worker_main(commands, reports, bootstrap: str, sink_kwargs: dict) -> None:
    """One worker: records in, KafkaSink out, cumulative counts back every 50 ms or so."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s worker %(name)s: %(message)s")
    # kafka-python narrates every failed connection and retry of an outage; the parent's own lines
    # (buffer, losses, reconnects) already say what happens to the records.
    logging.getLogger("kafka").setLevel(logging.CRITICAL + 1)
    from producer.kafka_sink import KafkaSink

    try:
        sink = KafkaSink(bootstrap, **sink_kwargs)
    except SinkUnavailableError as exc:
        reports.send_bytes(pickle.dumps({"error": str(exc)}))
        return
    except Exception as exc:  # noqa: BLE001 - anything else: say it in one line, do not hang the parent
        reports.send_bytes(pickle.dumps({"error": f"Kafka sender process failed to start: {exc!r}"}))
        return

    def report(**extra) -> None:
        st = sink.stats
        reports.send_bytes(pickle.dumps({
            "acked": st.acked, "acked_bytes": st.acked_bytes, "failed": st.failed, "failed_bytes": st.failed_bytes,
            "dropped": st.dropped, "lost": dict(sink.losses.by_reason), "last_error": st.last_error, **extra,
        }))

    report(ready=True)
    last_report = 0.0
    send_batch = sink.send_batch
    while True:
        if commands.poll(0.05):
            data = commands.recv_bytes()
            kind = data[:1]
            if kind == _BATCH:
                send_batch(pickle.loads(data[1:]))
            elif kind == _FLUSH:
                sink.flush()
                sink.poll()
                report(flushed=True)
                continue
            elif kind == _CLOSE:
                sink.close()
                report(closed=True)
                return
        now = time.monotonic()
        if now - last_report >= 0.05:
            last_report = now
            sink.poll()
            report()


class ParallelKafkaSink:
    """The KafkaSink interface (send / poll / flush / close / stats / losses) over worker processes."""

    def __init__(self, bootstrap_servers: str, workers: int = 2, *, topics=(), max_buffered_records: int = 100_000,
                 max_buffered_bytes: int = 64 * 1024**2, batch_records: int = 500, start_timeout_s: float = 60.0,
                 **sink_kwargs):
        if workers < 1:
            raise ValueError("ParallelKafkaSink needs at least one worker")
        self.bootstrap_servers = bootstrap_servers
        self.max_buffered_records = max_buffered_records
        self.max_buffered_bytes = max_buffered_bytes
        self.batch_records = batch_records
        self.latency = None
        self.stats = SinkStats()
        self.losses = LossLedger()
        self._worker_counts: list[dict] = [{} for _ in range(workers)]
        self._batches: list[list] = [[] for _ in range(workers)]
        self._route: dict[tuple[str, bytes | None], int] = {}
        self._lock = threading.Lock()
        self._events = [threading.Event() for _ in range(workers)]
        self._closing = False
        kwargs = dict(sink_kwargs, topics=tuple(topics), when_full="block",
                      max_buffered_records=max_buffered_records, max_buffered_bytes=max_buffered_bytes)
        self._procs, self._commands, self._reports = [], [], []
        for _ in range(workers):
            # A fresh interpreter (not fork, not multiprocessing's spawn, which re-imports the caller's
            # __main__): no inherited client threads or sockets, whatever script started us.
            cmd_r, cmd_w = os.pipe()
            rep_r, rep_w = os.pipe()
            proc = subprocess.Popen(
                [sys.executable, "-m", "producer.parallel_sink", str(cmd_r), str(rep_w)],
                pass_fds=(cmd_r, rep_w), stdin=subprocess.DEVNULL, close_fds=True,
            )
            os.close(cmd_r)
            os.close(rep_w)
            command = Connection(cmd_w, readable=False)
            command.send_bytes(pickle.dumps((bootstrap_servers, kwargs)))
            self._procs.append(proc)
            self._commands.append(command)
            self._reports.append(Connection(rep_r, writable=False))
        self._sent_bytes = [0] * workers
        try:
            self._wait_ready(start_timeout_s)
        except BaseException:
            self._kill()
            raise
        self._reader = threading.Thread(target=self._read_reports, name="kafka-sender-reports", daemon=True)
        self._reader.start()

    # ---- reports from the workers -------------------------------------------------------------

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(range(len(self._procs)))
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SinkUnavailableError(f"Kafka sender processes did not start within {timeout_s:.0f} s")
            for conn in wait_connections([self._reports[i] for i in pending], timeout=left):
                i = self._reports.index(conn)
                try:
                    msg = pickle.loads(conn.recv_bytes())
                except EOFError:
                    raise SinkUnavailableError("a Kafka sender process exited during start-up") from None
                if "error" in msg:
                    raise SinkUnavailableError(msg["error"])
                self._apply(i, msg)
                pending.discard(i)

    def _read_reports(self) -> None:
        open_conns = list(self._reports)
        while open_conns:
            for conn in wait_connections(open_conns, timeout=1.0):
                i = self._reports.index(conn)
                try:
                    msg = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    open_conns.remove(conn)
                    if not self._closing:
                        log.error("Kafka sender process %d exited unexpectedly", i)
                    self._events[i].set()
                    continue
                self._apply(i, msg)
                if msg.get("flushed") or msg.get("closed"):
                    self._events[i].set()

    def _apply(self, i: int, msg: dict) -> None:
        with self._lock:
            self._worker_counts[i] = msg
            counts = self._worker_counts
            st = self.stats
            st.acked = sum(c.get("acked", 0) for c in counts)
            st.acked_bytes = sum(c.get("acked_bytes", 0) for c in counts)
            st.failed = sum(c.get("failed", 0) for c in counts)
            st.failed_bytes = sum(c.get("failed_bytes", 0) for c in counts)
            st.dropped = sum(c.get("dropped", 0) for c in counts)
            st.last_error = msg.get("last_error") or st.last_error
            lost: dict[str, int] = {}
            for c in counts:
                for reason, n in (c.get("lost") or {}).items():
                    lost[reason] = lost.get(reason, 0) + n
            self.losses.by_reason.clear()
            self.losses.by_reason.update(lost)

    # ---- sending ----------------------------------------------------------------------------

    def _full(self) -> bool:
        st = self.stats
        return (st.sent - st.acked - st.failed >= self.max_buffered_records
                or st.sent_bytes - st.acked_bytes - st.failed_bytes >= self.max_buffered_bytes)

    def send(self, record: KafkaRecord, t0_ns: int | None = None) -> bool:
        route_key = (record.topic, record.key)
        i = self._route.get(route_key)
        if i is None:  # keys dealt round-robin as they first appear: a few products spread evenly
            i = self._route[route_key] = len(self._route) % len(self._procs)
        batch = self._batches[i]
        batch.append((record.topic, record.key, record.value, record.timestamp_ms, record.headers))
        st = self.stats
        st.sent += 1
        st.sent_bytes += len(record.value)
        st.by_topic[record.topic] = st.by_topic.get(record.topic, 0) + 1
        if len(batch) >= self.batch_records:
            self._ship(i)
            if self._full():
                self._wait_for_room()
        return True

    def _ship(self, i: int) -> None:
        batch = self._batches[i]
        if batch:
            self._batches[i] = []
            self._commands[i].send_bytes(_BATCH + pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))

    def _wait_for_room(self) -> None:
        for i in range(len(self._procs)):  # whatever waits in our batches cannot be acknowledged
            self._ship(i)
        while self._full():
            if all(p.poll() is not None for p in self._procs):
                raise SinkUnavailableError("all Kafka sender processes exited; see the lines above")
            time.sleep(0.002)

    def poll(self) -> None:
        pass  # the workers report their own buffering and losses

    def flush(self, timeout_s: float | None = None) -> bool:
        for i in range(len(self._procs)):
            self._ship(i)
            self._events[i].clear()
            self._commands[i].send_bytes(_FLUSH)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for ev in self._events:
            if not ev.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        self._closing = True
        for i in range(len(self._procs)):
            try:
                self._ship(i)
                self._events[i].clear()
                self._commands[i].send_bytes(_CLOSE)
            except (OSError, ValueError):
                self._events[i].set()
        deadline = time.monotonic() + timeout_s + 5
        for ev in self._events:
            ev.wait(max(0.0, deadline - time.monotonic()))
        for p in self._procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._kill_processes()
        self._reader.join(timeout=5)
        self._kill()
        lost = self.stats.sent - self.stats.acked - self.stats.failed
        if lost > 0:
            log.error("%s records handed to the Kafka sender processes were never acknowledged: lost", f"{lost:,}")
            self.losses.by_reason["not_delivered_at_exit"] = self.losses.by_reason.get("not_delivered_at_exit", 0) + lost
            self.stats.dropped += lost

    def _kill_processes(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)

    def _kill(self) -> None:
        self._kill_processes()
        for conn in (*self._commands, *self._reports):
            try:
                conn.close()
            except OSError:
                pass


if __name__ == "__main__":  # a sender process: python -m producer.parallel_sink CMD_FD REPORT_FD
    _commands = Connection(int(sys.argv[1]), writable=False)
    _reports = Connection(int(sys.argv[2]), readable=False)
    _bootstrap, _kwargs = pickle.loads(_commands.recv_bytes())
    _worker_main(_commands, _reports, _bootstrap, _kwargs)
