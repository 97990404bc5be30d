"""`--record` files: what the recorder writes, replay reads back exactly (times to the ms, bytes); bad lines."""

from __future__ import annotations

import base64
import json
import time
import uuid
from types import SimpleNamespace

import pytest

from crypto_assets_tests.support.fake_sinks import RecordingSink
from producer.recording import Recorder
from producer.run import (
    datetime_to_ms,
    parse_rfc3339,
    publish_frames,
    read_recording,
    rfc3339_to_ms,
    run_offline_source,
)

TOPICS = SimpleNamespace(trades_topic="trades", ticker_topic="ticker", deadletter_topic="dead")


def test_recorder_lines_round_trip_through_read_recording(tmp_path):
    path = tmp_path / "rec" / "live.ndjson"
    rec = Recorder(path)
    frames = [
        (b'{"channel":"heartbeats","sequence_num":0,"events":[]}', 1_784_086_810_698_612_180, "c1"),
        ('{"channel":"ticker","text":"caf\u00e9"}', 1_784_086_810_999_999_999, "c1"),
        (b"\xff\xfe\x00 binary garbage", 1_784_086_811_000_000_001, "c2"),
    ]
    for frame, ns, conn in frames:
        rec.write(frame, ns, conn)
    rec.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [set(line) for line in lines[:2]] == [{"received_at", "connection_id", "frame"}] * 2
    assert lines[0]["received_at"] == "2026-07-15T03:40:10.69861218Z"  # nanoseconds kept
    assert lines[2]["frame_encoding"] == "base64"

    timed = list(read_recording(path))
    assert [(datetime_to_ms(t.received_at), t.connection_id, t.problem) for t in timed] == [
        (ns // 1_000_000, conn, None) for _, ns, conn in frames]
    assert timed[0].text.encode() == frames[0][0]
    assert timed[1].text == frames[1][0]
    assert timed[2].text == frames[2][0]  # bytes come back as bytes


def test_recorder_appends(tmp_path):
    path = tmp_path / "a.ndjson"
    for _ in range(2):
        rec = Recorder(path)
        rec.write("{}", 1_000_000_000, "c")
        rec.close()
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.parametrize("text", [
    "2026-07-15T03:40:10.69861218Z", "2026-07-15T03:40:10Z", "2026-07-15T03:40:10.9999999Z",
    "2024-02-29T23:59:59.001Z", "2026-07-15T05:40:10.5+02:00", "2026-07-15 03:40:10.123456789Z",
])
def test_fast_rfc3339_parse_matches_the_exact_one(text):
    assert rfc3339_to_ms(text) == datetime_to_ms(parse_rfc3339(text))


def test_bare_frames_use_the_envelope_timestamp(tmp_path):
    path = tmp_path / "bare.ndjson"
    path.write_text('{"channel":"heartbeats","timestamp":"2026-07-15T03:40:10.5Z","events":[]}\n\n')
    (timed,) = list(read_recording(path))
    assert timed.problem is None and timed.connection_id == _session(path)
    assert datetime_to_ms(timed.received_at) == rfc3339_to_ms("2026-07-15T03:40:10.5Z")
    assert json.loads(timed.text)["channel"] == "heartbeats"


def _session(path) -> str:
    """The connection id of a recording's bare frames: one per file, the same on every replay."""
    return f"replay-{uuid.uuid5(uuid.NAMESPACE_URL, str(path.resolve()))}"


T1 = "2026-07-15T03:40:10.5Z"
T2 = "2026-07-15T03:40:12.25Z"
ERROR = '{"type":"error","message":"authentication failure"}'  # sample line 20: no envelope timestamp


def _rec(received_at: str, frame: str, connection_id: str = "c1", **extra) -> str:
    return json.dumps({"received_at": received_at, "connection_id": connection_id, "frame": frame, **extra},
                      separators=(",", ":"))


def _heartbeat(seq: int) -> str:
    return json.dumps({"channel": "heartbeats", "timestamp": T1, "sequence_num": seq, "events": []})


BAD_B64 = _rec(T1, "not base64!", frame_encoding="base64")
LINES = [  # (line, frame read back, its problem) ; times and connections are checked below
    ("not json at all", "not json at all", "not_json"),
    ("[1, 2]", "[1, 2]", "not_json_object"),
    (_rec(T1, _heartbeat(0)), _heartbeat(0), None),
    (ERROR, ERROR, "no_timestamp"),
    ('{"channel":"heartbeats","timestamp":"yesterday","sequence_num":1}',
     '{"channel":"heartbeats","timestamp":"yesterday","sequence_num":1}', "bad_timestamp"),
    (_rec("2026-13-45T99:00:00Z", _heartbeat(2), "c1"), _heartbeat(2), "bad_timestamp"),
    (BAD_B64, BAD_B64, "bad_frame_encoding"),
    (b'\xff\xfe{"channel":"heartbeats"}', b'\xff\xfe{"channel":"heartbeats"}', "not_utf8"),
    (_rec(T2, _heartbeat(3)), _heartbeat(3), None),
    ('{"channel":"heartbeats","sequence_num":4,"events":[]}', '{"channel":"heartbeats","sequence_num":4,"events":[]}',
     "no_timestamp"),
]


def _write(path, lines) -> None:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines) + b"\n")


def test_a_line_without_a_usable_time_borrows_the_previous_lines_time_and_connection(tmp_path):
    path = tmp_path / "bad.ndjson"
    _write(path, [line for line, _, _ in LINES])
    read = list(read_recording(path))  # the blank last line is skipped
    assert [(t.text, t.problem) for t in read] == [(frame, problem) for _, frame, problem in LINES]
    t1, t2 = rfc3339_to_ms(T1), rfc3339_to_ms(T2)
    # Before the first timed line (line 3): its time and connection; after it, the previous line's.
    assert [datetime_to_ms(t.received_at) for t in read] == [t1] * 8 + [t2] * 2
    assert {t.connection_id for t in read} == {"c1"}


def test_untimed_lines_are_dead_letters_with_their_reason_and_counted(tmp_path):
    path = tmp_path / "bad.ndjson"
    _write(path, [line for line, _, _ in LINES])
    sink = RecordingSink()
    summary = publish_frames(read_recording(path), TOPICS, "replay", sink=sink)
    dead = [r for r in sink.records if r.topic == "dead"]
    expected = [(frame if isinstance(frame, bytes) else frame.encode(), problem or "")
                for _, frame, problem in LINES if problem]
    expected[2] = (ERROR.encode(), "coinbase_error")  # a Coinbase error frame keeps its reason
    assert [(r.value, dict(r.headers)["reason"].decode()) for r in dead] == expected
    assert all(r.timestamp_ms in (rfc3339_to_ms(T1), rfc3339_to_ms(T2)) for r in dead)
    assert summary.untimed == 8 and "untimed lines 8" in str(summary)
    assert summary.frames == 10 and summary.records == 8  # the two timed heartbeats are health frames
    pipeline = summary.pipeline
    assert pipeline.coinbase_errors == 1 and pipeline.deadletters["coinbase_error"] == 1
    # Heartbeats 0 and 3 had a time, 1, 2 and 4 did not: they still count for the sequence (no gap 1..2).
    h = pipeline.health
    assert (h.sequence_gaps, h.sequence_missing, h.sequence_out_of_order) == (0, 0, 0)


def test_a_file_without_any_usable_time_takes_the_replay_start(tmp_path):
    path = tmp_path / "junk.ndjson"
    _write(path, [ERROR, b"\x80", "{"])
    before = time.time_ns() // 1_000_000
    read = list(read_recording(path))
    after = time.time_ns() // 1_000_000
    assert [t.problem for t in read] == ["no_timestamp", "not_utf8", "not_json"]
    times = {datetime_to_ms(t.received_at) for t in read}
    assert len(times) == 1 and before <= times.pop() <= after
    assert {t.connection_id for t in read} == {_session(path)}


def test_a_valid_base64_frame_is_read_back_as_bytes(tmp_path):
    path = tmp_path / "b64.ndjson"
    _write(path, [_rec(T1, base64.b64encode(b"\xff\x00").decode(), frame_encoding="base64")])
    (timed,) = list(read_recording(path))
    assert (datetime_to_ms(timed.received_at), timed.text, timed.connection_id, timed.problem) == (
        rfc3339_to_ms(T1), b"\xff\x00", "c1", None)


def test_a_directory_is_refused_before_anything_else(tmp_path):
    # At once: TOPICS names no broker, so reaching for one would fail otherwise.
    with pytest.raises(IsADirectoryError) as exc:
        run_offline_source(TOPICS, "replay", str(tmp_path), seed=0, duration_s=0, speed=0, workers=0)
    assert str(exc.value) == f"recording {tmp_path} is a directory: give the NDJSON file to replay"
