"""The one event source (bounded slices, condensed history, then live) and the one renderer."""

from __future__ import annotations

import threading
from pathlib import Path

from nsm.execution import EventSource, follow
from nsm.execution.render import EPOCH, render, render_text
from nsm.runs.events import EVENT_TYPES, EventLogWriter, encode_event, make_event


def long_log(path: Path, epochs: int = 50, progress_per_epoch: int = 200) -> int:
    lines = [encode_event(make_event(0, "run_started", t=0.0, run="r", params=10, epochs=epochs))]
    seq = 1
    for e in range(1, epochs + 1):
        for step in range(progress_per_epoch):
            lines.append(encode_event(make_event(seq, "progress", t=float(seq), epoch=e, step=step, steps=progress_per_epoch)))
            seq += 1
        lines.append(encode_event(make_event(seq, "epoch_end", t=float(seq), epoch=e, loss=1.0 / e, acc=0.5)))
        seq += 1
    lines.append(encode_event(make_event(seq, "finished", t=float(seq), reason="completed", epochs_done=epochs)))
    path.write_bytes(b"".join(lines))
    return seq + 1


def test_a_long_history_comes_in_bounded_slices_with_superseded_progress_left_out(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    total = long_log(path)
    source = EventSource.for_viewer(path)
    source.slice_bytes = 64 * 1024
    slices, seen = 0, []
    while True:
        batch = source.read()
        slices += 1
        seen.extend(batch)
        if not source.behind:
            break
    assert slices > 10  # never the whole history in one go
    assert [e["type"] for e in seen].count("epoch_end") == 50
    assert seen[-1]["type"] == "finished" and seen[-1]["seq"] == total - 1
    progress = [e for e in seen if e["type"] == "progress"]
    assert 0 < len(progress) <= slices  # at most the latest of each slice
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_live_events_are_not_condensed_and_a_partial_line_is_not_more_to_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventLogWriter(path) as writer:
        writer.emit("run_started", run="r")
        source = EventSource.for_viewer(path)
        assert [e["type"] for e in source.read()] == ["run_started"]
        for step in range(5):
            writer.emit("progress", epoch=1, step=step, steps=5)
    with open(path, "ab") as fh:
        fh.write(b'{"v":1,"seq":6,"t":1.0,"type":"pro')  # a writer killed mid-line
    assert [e["step"] for e in source.read()] == [0, 1, 2, 3, 4]
    assert not source.behind
    assert source.read() == []


def test_follow_returns_the_terminal_event_of_a_log_that_grows_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventLogWriter(path)
    writer.emit("run_started", run="r")
    seen: list[str] = []
    source = EventSource(path)

    def write_rest() -> None:
        for e in range(1, 4):
            writer.emit("epoch_end", epoch=e, loss=0.5, acc=0.5)
            source.poke()
        writer.emit("finished", reason="completed", epochs_done=3)
        source.poke()

    threading.Thread(target=write_rest).start()
    end = follow(source, lambda e: seen.append(e["type"]), timeout=30, poll_s=0.05)
    writer.close()
    assert end is not None and end["type"] == "finished"
    assert seen == ["run_started", "epoch_end", "epoch_end", "epoch_end", "finished"]


def test_follow_gives_up_when_the_writer_is_gone_without_a_final_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(encode_event(make_event(0, "run_started", run="r")))
    end = follow(EventSource(path), lambda e: None, alive=lambda: False, timeout=30, poll_s=0.01)
    assert end is None


def test_every_event_type_renders_and_a_damaged_payload_never_raises() -> None:
    for kind in EVENT_TYPES:
        for payload in ({}, {"epoch": "x", "loss": None, "test": "nope", "params": 1.5, "step": [], "config": 3}):
            for line in render({"type": kind, **payload}):
                assert isinstance(line.text, str)
    failed = render({"type": "failed", "error": "the loss became nan", "hint": "lower LR"})
    assert [line.text for line in failed] == ["failed: the loss became nan", "hint: lower LR"]
    epoch = {"type": "epoch_end", "epoch": 3, "loss": 0.25, "acc": 0.9, "cycle_loss": 0.01, "lr": 1e-3, "graphs_per_s": 812.4}
    assert render(epoch)[0].kind == EPOCH
    assert render_text(epoch) == ["epoch 3: loss 0.2500 acc 0.900 cycle 0.0100 lr 0.0010 · 812 graphs/s"]
    assert render_text(epoch, epochs=False) == []


def test_follow_goes_past_an_ending_that_a_resume_superseded(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    kinds = ["run_started", "epoch_end", "interrupted", "resumed", "epoch_end", "finished"]
    path.write_bytes(b"".join(encode_event(make_event(i, k, epoch=1)) for i, k in enumerate(kinds)))
    seen: list[str] = []
    end = follow(EventSource(path), lambda e: seen.append(e["type"]), timeout=30, poll_s=0.01)
    assert end is not None and end["type"] == "finished" and end["seq"] == 5
    assert seen == kinds


def test_the_finished_line_puts_each_ood_accuracy_beside_test() -> None:
    e = make_event(
        9, "finished", reason="completed", epochs_done=6, best_epoch=5, best_val_loss=0.3,
        test={"acc": 0.912, "loss": 0.25}, ood={"ood_steps_11_20": {"acc": 0.851, "loss": 0.4}, "ood_steps_21_40": {"acc": 0.702, "loss": 0.9}},
        total_time_s=12.0,
    )  # fmt: skip
    (line,) = render_text(e)
    assert "test acc 0.912" in line and "OOD 11-20 acc 0.851" in line and "OOD 21-40 acc 0.702" in line
    assert line.index("test acc") < line.index("OOD 11-20") < line.index("OOD 21-40")
    old = make_event(9, "finished", reason="completed", epochs_done=6, test={"acc": 0.9, "loss": 0.2}, total_time_s=1.0)
    assert "OOD" not in render_text(old)[0]  # a log written before OOD splits existed
