"""`crypto-pipeline produce` as a user runs it: live until SIGTERM, replay of a file, clear errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from crypto_assets.tools.cli import main
from crypto_assets_tests.conftest import REPO
from crypto_assets_tests.support.fake_exchange import FakeCoinbase, Market
from crypto_assets_tests.support.live_producer import consume_all, expected_records
from producer.recording import Recorder
from producer.synthetic import SyntheticConfig, generate_frames

CLI = [sys.executable, "-m", "crypto_assets.tools.cli"]


def _env(settings, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTO_", "COINBASE_"))}
    env.update(
        CRYPTO_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        CRYPTO_TRADES_TOPIC=settings.trades_topic,
        CRYPTO_TICKER_TOPIC=settings.ticker_topic,
        CRYPTO_DEADLETTER_TOPIC=settings.deadletter_topic,
        CRYPTO_PRODUCTS=",".join(settings.products),
        **extra,
    )
    return env


def _summary_counts(line: str) -> tuple[int, int, int]:
    m = re.search(r"-> ([\d,]+) Kafka records, ([\d,]+) acknowledged, ([\d,]+) lost", line)
    assert m, line
    return tuple(int(g.replace(",", "")) for g in m.groups())


def test_sigterm_flushes_and_exits_0_with_a_summary(fresh_settings):
    s = fresh_settings
    with FakeCoinbase(Market(duration_s=300, seed=4), rate=300) as server:
        proc = subprocess.Popen(
            [*CLI, "produce", "--source", "coinbase", "--ws-url", server.url, "--metrics-port", "0",
             "--status-interval", "0.5"],
            env=_env(s), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (server.connections and server.connections[0].updates_sent >= 450):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the producer never consumed the feed"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("summary: coinbase: ")
    records, acked, lost = _summary_counts(summary)
    assert records == acked > 300 and lost == 0  # 450 messages, a tenth heartbeats
    assert "SIGTERM received: stopping, flushing Kafka" in err
    assert "status: messages market_trades=" in err
    assert "Traceback" not in err

    data = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic])
    assert len(data) == acked
    expected = expected_records([(m, t) for _, m, t in server.sent_data_messages()], s.trades_topic, s.ticker_topic)
    for r in data:  # nothing invented: each record is a message the server sent, as sent
        assert r.value in expected[(r.topic, r.key)]


def test_replay_of_a_recording_from_the_command_line(fresh_settings, tmp_path):
    s = fresh_settings
    path = tmp_path / "session.ndjson"
    rec = Recorder(path)
    config = SyntheticConfig(seed=5, duration_s=30, start=datetime(2026, 3, 1, tzinfo=timezone.utc))
    frames = list(generate_frames(config))
    for f in frames:
        ns = int(f.received_at.timestamp()) * 1_000_000_000 + f.received_at.microsecond * 1000
        rec.write(f.text, ns, "conn-recorded")
    rec.write(b"\x00\x01 garbage", ns, "conn-recorded")
    rec.close()
    res = subprocess.run([*CLI, "produce", "--source", "replay", str(path)], env=_env(s), cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith(f"summary: replay: {len(frames) + 1:,} messages")
    records, acked, lost = _summary_counts(last)
    assert lost == 0
    data = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic, s.deadletter_topic])
    assert len(data) == records == acked
    assert {r.header["connection_id"] for r in data} == {b"conn-recorded"}
    assert [r.header.get("reason") for r in data if r.topic == s.deadletter_topic] == [b"not_json"]
    first = min(r.timestamp for r in data)
    assert first == int(frames[0].received_at.timestamp() * 1000)  # the recorded ingest time, not now


@pytest.mark.parametrize("argv, env, message", [
    (["--source", "synthetic", "--record", "x.ndjson"], {}, "--record saves the live stream"),
    (["--source", "coinbase", "--ws-url", "http://example"], {}, "must start with ws:// or wss://"),
    (["--source", "coinbase"], {"COINBASE_API_KEY_NAME": "k"}, "COINBASE_API_PRIVATE_KEY is not set"),
    (["--source", "coinbase", "--products", ","], {}, "--products needs at least one product id"),
    (["--source", "coinbase"], {"CRYPTO_PRODUCER_WATCHDOG_S": "soon"}, "CRYPTO_PRODUCER_WATCHDOG_S='soon' is not valid"),
    (["--source", "replay", "/nonexistent/rec.ndjson"], {}, "recording /nonexistent/rec.ndjson not found"),
    (["--source", "coinbase", "rec.ndjson"], {}, "only read with --source replay"),
])
def test_user_errors_are_one_line(argv, env, message, monkeypatch, capsys):
    for k in list(os.environ):
        if k.startswith(("CRYPTO_", "COINBASE_")):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["produce", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def _clean_env(monkeypatch, settings=None) -> None:
    for k in list(os.environ):
        if k.startswith(("CRYPTO_", "COINBASE_")):
            monkeypatch.delenv(k)
    for k, v in (_env(settings) if settings else {}).items():
        if k.startswith("CRYPTO_"):
            monkeypatch.setenv(k, v)


@pytest.mark.parametrize("unreadable, message", [
    ("directory", "is a directory: give the NDJSON file to replay"),
    ("no_permission", "cannot be read (permission denied): check its permissions"),
])
def test_an_unreadable_recording_is_one_line(unreadable, message, tmp_path, monkeypatch, capsys):
    path = tmp_path
    if unreadable == "no_permission":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path = tmp_path / "rec.ndjson"
        path.write_text("{}\n")
        path.chmod(0)
    _clean_env(monkeypatch)
    assert main(["produce", "--source", "replay", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: recording {path} {message}"]


def test_replay_of_the_samples_file_does_not_stop_on_its_error_frame(fresh_settings, monkeypatch, capsys):
    # The reproduction of issue #14 item 1: sample line 20 is an error frame without a timestamp.
    _clean_env(monkeypatch, fresh_settings)
    samples = REPO / "producer" / "samples" / "samples_advanced_trade.ndjson"
    assert main(["produce", "--source", "replay", str(samples), "--workers", "0"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "untimed lines 1" in out[-2] and out[-1].startswith("summary: replay: 32 messages")
    assert "dead letters 6 (coinbase_error 1, unknown_channel 5)" in out[-1]  # candles, status, 3 x l2_data
    records, acked, lost = _summary_counts(out[-1])
    assert records == acked and lost == 0


def test_bad_metrics_port_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["produce", "--source", "coinbase", "--metrics-port", "abc"])
    assert exc.value.code == 2
    assert "--metrics-port" in capsys.readouterr().err


def test_broker_down_is_one_line(monkeypatch, capsys):
    from crypto_assets_tests.conftest import free_port

    for k in list(os.environ):
        if k.startswith(("CRYPTO_", "COINBASE_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CRYPTO_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    import functools

    import producer.live
    from producer.kafka_sink import KafkaSink

    # The real wait is 10 s of bootstrap attempts; the message is the same after 1 s.
    monkeypatch.setattr(producer.live, "KafkaSink", functools.partial(KafkaSink, bootstrap_timeout_ms=1000))
    t0 = time.monotonic()
    rc = main(["produce", "--source", "coinbase", "--ws-url", "ws://127.0.0.1:1", "--metrics-port", "off"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: Kafka broker not reachable at 127.0.0.1:") and "crypto-pipeline kafka up" in err[0]
    assert time.monotonic() - t0 < 10


def test_synthetic_source_from_the_command_line(fresh_settings, monkeypatch, capsys):
    s = fresh_settings
    for k in list(os.environ):
        if k.startswith(("CRYPTO_", "COINBASE_")):
            monkeypatch.delenv(k)
    for k, v in _env(s).items():
        if k.startswith("CRYPTO_"):
            monkeypatch.setenv(k, v)
    assert main(["produce", "--source", "synthetic", "--duration", "20", "--seed", "3", "--workers", "0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("summary: synthetic: ")
    records, acked, lost = _summary_counts(last)
    data = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic])
    assert len(data) == records == acked > 50 and lost == 0
    now_ms = time.time() * 1000
    assert all(now_ms - 120_000 < r.timestamp <= now_ms for r in data)  # synthetic data carries current times
