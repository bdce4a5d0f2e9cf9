from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nsm.runs import EventFollower, EventLogWriter, make_event, read_events
from nsm.runs.events import TERMINAL_TYPES, decode_line


def _log(tmp_path: Path) -> Path:
    return tmp_path / "events.jsonl"


def test_make_event_adds_the_envelope() -> None:
    event = make_event(3, "log", level="info", message="hi", t=12.5)
    assert event == {"v": 1, "seq": 3, "t": 12.5, "type": "log", "level": "info", "message": "hi"}
    with pytest.raises(ValueError, match="reserved"):
        make_event(0, "log", seq=1)
    with pytest.raises(ValueError, match="seq"):
        make_event(-1, "log")
    assert TERMINAL_TYPES == {"finished", "interrupted", "failed"}


def test_writer_starts_at_zero_and_writes_one_line_per_event(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        assert w.next_seq == 0
        w.emit("log", level="info", message="line one\nline two")
        w.append(make_event(1, "gpu", sample={"util": None}))
        w.append({"type": "log", "level": "info", "message": "seq filled in"})
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [0, 1, 2]
    assert all(line.startswith(b'{"v":1,"seq":%d,"t":' % i) for i, line in enumerate(lines))
    assert b',"type":"log",' in lines[2]
    assert json.loads(lines[0])["message"] == "line one\nline two"


def test_writer_refuses_out_of_order_seqs(tmp_path: Path) -> None:
    with EventLogWriter(_log(tmp_path)) as w:
        w.emit("log", message="a")
        with pytest.raises(ValueError, match="expects seq 1"):
            w.append(make_event(0, "log"))
        with pytest.raises(ValueError, match="expects seq 1"):
            w.append(make_event(5, "log"))
        with pytest.raises(TypeError):
            w.emit("log", message=object())
        assert w.next_seq == 1
    assert len(read_events(_log(tmp_path))[0]) == 1


def test_writer_continues_the_sequence_after_reopening(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        for _ in range(3):
            w.emit("log", message="x")
    with EventLogWriter(path) as w:
        assert w.next_seq == 3
        w.emit("resumed", epoch=1, step=0)
    assert [e["seq"] for e in read_events(path)[0]] == [0, 1, 2, 3]


def test_writer_truncates_a_partial_tail_left_by_a_crash(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        w.emit("log", message="whole")
        w.emit("log", message="whole too")
    with open(path, "ab") as fh:
        fh.write(b'{"v": 1, "seq": 2, "type": "epoch_e')
    with EventLogWriter(path) as w:
        assert w.next_seq == 2
        w.emit("finished", reason="completed")
    events, bad = read_events(path)
    assert [e["seq"] for e in events] == [0, 1, 2] and bad == 0
    assert events[-1]["type"] == "finished"


def test_writer_skips_bad_lines_when_finding_the_last_seq(tmp_path: Path) -> None:
    path = _log(tmp_path)
    path.write_bytes(b'{"seq": 0, "type": "log"}\n{"seq": 1, "type": "log"}\nnot json\n[1, 2]\n')
    with EventLogWriter(path) as w:
        assert w.next_seq == 2


def test_writer_handles_a_log_longer_than_one_read_block(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        for _ in range(5):
            w.emit("log", message="y" * 40_000)
    with open(path, "ab") as fh:
        fh.write(b"z" * 100_000)  # a partial line longer than a block
    with EventLogWriter(path) as w:
        assert w.next_seq == 5
    assert path.read_bytes().endswith(b"\n")


def test_read_events_ignores_a_truncated_last_line(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        for i in range(4):
            w.emit("log", message=str(i))
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the last line loses its end
    events, bad = read_events(path)
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert bad == 0


def test_read_events_counts_bad_lines_and_starts_from_a_seq(tmp_path: Path) -> None:
    path = _log(tmp_path)
    path.write_text(
        '{"seq": 0, "type": "a"}\n'
        "garbage\n"
        '"a string"\n'
        '{"type": "no seq"}\n'
        '{"seq": true, "type": "bool seq"}\n'
        "\n"
        '{"seq": 1, "type": "b"}\n'
        '{"seq": 1, "type": "duplicate"}\n'
        '{"seq": 2, "type": "c"}\n'
    )
    events, bad = read_events(path)
    assert [e["type"] for e in events] == ["a", "b", "c"]
    assert bad == 4
    assert [e["seq"] for e in read_events(path, from_seq=2)[0]] == [2]
    assert [e["type"] for e in read_events(path, types=("b",))[0]] == ["b"]


def test_read_events_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_events(tmp_path / "nope" / "events.jsonl") == ([], 0)


def test_decode_line_wants_an_object_with_an_integer_seq() -> None:
    assert decode_line(b'{"seq": 4}') == {"seq": 4}
    assert decode_line(b'{"seq": "4"}') is None
    assert decode_line(b"\xff\xfe") is None


# ------------------------------------------------------------------ follower


def test_follower_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = _log(tmp_path)
    follower = EventFollower(path)
    assert follower.poll() == [] and follower.problem is None
    with EventLogWriter(path) as w:
        w.emit("log", message="first")
    assert [e["seq"] for e in follower.poll()] == [0]


def test_follower_delivers_each_event_once_across_appends(tmp_path: Path) -> None:
    path = _log(tmp_path)
    w = EventLogWriter(path)
    follower = EventFollower(path)
    w.emit("log", message="a")
    w.emit("log", message="b")
    assert [e["seq"] for e in follower.poll()] == [0, 1]
    assert follower.poll() == []
    w.emit("log", message="c")
    assert [e["seq"] for e in follower.poll()] == [2]
    w.close()


def test_follower_waits_for_a_partial_line_to_be_completed(tmp_path: Path) -> None:
    path = _log(tmp_path)
    line = json.dumps(make_event(0, "log", message="slow")).encode() + b"\n"
    follower = EventFollower(path)
    with open(path, "ab") as fh:
        fh.write(line[:10])
    assert follower.poll() == []
    with open(path, "ab") as fh:
        fh.write(line[10:])
    assert [e["message"] for e in follower.poll()] == ["slow"]


def test_follower_starts_from_a_seq(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        for _ in range(5):
            w.emit("log")
    assert [e["seq"] for e in EventFollower(path, from_seq=3).poll()] == [3, 4]


def test_follower_rereads_a_replaced_file_without_duplicates(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        w.emit("log", message="a")
        w.emit("log", message="b")
    follower = EventFollower(path)
    assert len(follower.poll()) == 2
    # Replaced wholesale (a mirror rewriting the log): same first events, one more.
    fresh = tmp_path / "fresh.jsonl"
    with EventLogWriter(fresh) as w:
        for m in "abc":
            w.emit("log", message=m)
    os.replace(fresh, path)
    assert [e["message"] for e in follower.poll()] == ["c"]


def test_follower_rereads_a_truncated_file(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        for _ in range(3):
            w.emit("log")
    follower = EventFollower(path)
    assert len(follower.poll()) == 3
    with open(path, "r+b") as fh:
        fh.truncate(0)
    assert follower.poll() == []
    with EventLogWriter(path) as w:
        for _ in range(5):
            w.emit("log")
    assert [e["seq"] for e in follower.poll()] == [3, 4]


def test_follower_notices_a_rewrite_that_grew_past_its_offset(tmp_path: Path) -> None:
    path = _log(tmp_path)
    path.write_text('{"seq": 0, "type": "a"}\n')
    follower = EventFollower(path)
    assert len(follower.poll()) == 1
    with open(path, "r+b") as fh:  # same inode, longer, line boundaries moved
        fh.write(b'{"seq": 0, "type": "a", "pad": 1}\n{"seq": 1, "type": "b"}\n')
    assert [e["type"] for e in follower.poll()] == ["b"]
    assert follower.problem is None


def test_follower_survives_bad_lines_and_a_deleted_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "events.jsonl"
    path.write_text('{"seq": 0, "type": "a"}\n{oops\n{"seq": 1, "type": "b"}\n')
    follower = EventFollower(path)
    assert [e["type"] for e in follower.poll()] == ["a", "b"]
    assert follower.bad_lines == 1 and "unreadable" in (follower.problem or "")
    shutil.rmtree(run_dir)
    assert follower.poll() == []
    assert "no longer exists" in (follower.problem or "")
    run_dir.mkdir()
    path.write_text('{"seq": 0, "type": "a"}\n{"seq": 1, "type": "b"}\n{"seq": 2, "type": "c"}\n')
    assert [e["type"] for e in follower.poll()] == ["c"]
    assert follower.problem is None


def test_follower_with_max_bytes_delivers_everything_over_several_polls(tmp_path: Path) -> None:
    path = _log(tmp_path)
    with EventLogWriter(path) as w:
        for i in range(50):
            w.emit("log", message="m" * (i * 10))
    follower = EventFollower(path)
    seqs: list[int] = []
    for _ in range(100):
        batch = follower.poll(max_bytes=100)
        seqs += [e["seq"] for e in batch]
    assert seqs == list(range(50))


def test_two_followers_and_a_reattach_see_the_same_stream(tmp_path: Path) -> None:
    path = _log(tmp_path)
    w = EventLogWriter(path)
    a, b = EventFollower(path), EventFollower(path)
    seen_a: list[int] = []
    for i in range(6):
        w.emit("log", message=str(i))
        seen_a += [e["seq"] for e in a.poll()]
        if i == 2:
            seen_b = [e["seq"] for e in b.poll()]
    b = EventFollower(path, from_seq=seen_b[-1] + 1)  # re-attach after a dropped link
    seen_b += [e["seq"] for e in b.poll()]
    assert seen_a == seen_b == list(range(6))
    w.close()
