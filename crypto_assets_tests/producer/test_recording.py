"""`--record` files: what the recorder writes, replay reads back exactly (times to the ms, bytes)."""

from __future__ import annotations

import json

import pytest

from producer.recording import Recorder
from producer.run import (
    _entries,
    datetime_to_ms,
    parse_rfc3339,
    read_recording,
    rfc3339_to_ms,
)


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

    entries = list(_entries(path))
    assert [(ms, conn) for ms, _, conn in entries] == [(ns // 1_000_000, conn) for _, ns, conn in frames]
    assert entries[0][1].encode() == frames[0][0]
    assert entries[1][1] == frames[1][0]
    assert entries[2][1] == frames[2][0]  # bytes come back as bytes
    timed = list(read_recording(path))
    assert [datetime_to_ms(t.received_at) for t in timed] == [ns // 1_000_000 for _, ns, _ in frames]


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
    ((ms, frame, conn),) = list(_entries(path))
    assert ms == rfc3339_to_ms("2026-07-15T03:40:10.5Z") and conn.startswith("replay-")
    assert json.loads(frame)["channel"] == "heartbeats"


def test_bad_lines_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text('{"frame": "x", "received_at": "2026-07-15T03:40:10Z"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.ndjson:2: not a JSON line"):
        list(_entries(path))
