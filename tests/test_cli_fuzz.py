"""Fuzzing the headless CLI with bad input: flags, run refs, store roots and damaged run files.

Every case calls `tui.cli.main([...])` in this process (150 subprocesses would
take minutes) and asserts: no traceback, the documented exit code (2 for a bad
input, 1 for a "not running"-style state, 0 only for a command that
legitimately lists a damaged run, and then its output names the problem), no
hang, and nothing in the store changed except by a command meant to change it.

The cases are a list built in code, so a failure is reproducible by its id.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from nsm.config import FIELDS, RunConfig
from nsm.runs.events import encode_event, make_event

from tests.runs.helpers import training_events

pytestmark = pytest.mark.timeout(240)

TRACEBACK = "Traceback (most recent call last)"
CASE_SECONDS = 20  # one case longer than this is a hang

GOOD = "planning/good"
BAD = "planning/bad"
OTHER = "kg/other"

TINY = dict(num_graphs=60, batch_size=8, hidden=16, epochs=3, eval_every=1, device="cpu", threads=1)


# ------------------------------------------------------------------ the store


def _events_bytes(domain: str = "planning", run: str = "good", finish: bool = True) -> bytes:
    out = []
    for seq, (type_, payload) in enumerate(training_events(3, finish=finish)):
        if type_ == "run_started":
            payload = {**payload, "run": run, "domain": domain}
        out.append(encode_event(make_event(seq, type_, t=1_700_000_000.0 + seq, **payload)))
    return b"".join(out)


_CHECKPOINTS: dict[str, bytes] = {}


def checkpoint_bytes(domain: str = "planning", **changes: Any) -> bytes:
    """A real, small nsm-tui checkpoint (built once per kind and reused)."""
    key = json.dumps([domain, changes], sort_keys=True, default=str)
    if key not in _CHECKPOINTS:
        import tempfile

        from nsm.data import domain_spec
        from nsm.models import build_model
        from nsm.training.checkpoint import save_checkpoint

        spec = domain_spec(domain)
        cfg = RunConfig(domain=domain, **TINY).to_dict()
        state: dict[str, Any] = {
            "config": cfg,
            "epoch": 1,
            "step": 0,
            "model": build_model(spec, hidden=TINY["hidden"]).state_dict(),
            "vocabulary": spec.to_dict(),
        }
        state.update(changes)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "c.pt"
            save_checkpoint(path, state)
            _CHECKPOINTS[key] = path.read_bytes()
    return _CHECKPOINTS[key]


def write_run(root: Path, ref: str, *, finish: bool = True, checkpoint: bytes | None = None) -> Path:
    domain, name = ref.split("/")
    path = root / domain / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(RunConfig(domain=domain, **TINY).to_dict()))
    (path / "events.jsonl").write_bytes(_events_bytes(domain, name, finish))
    if checkpoint is not None:
        (path / "best_model.pt").write_bytes(checkpoint)
    return path


def build_store(root: Path) -> None:
    write_run(root, GOOD, checkpoint=checkpoint_bytes("planning"))
    write_run(root, BAD, finish=False, checkpoint=checkpoint_bytes("planning"))
    write_run(root, OTHER, checkpoint=checkpoint_bytes("kg"))


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` with its type, size and mtime (symlinks not followed)."""
    out: dict[str, tuple[Any, ...]] = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode >> 12, st.st_size if not os.path.isdir(p) else 0, st.st_mtime_ns)
    return out


# ------------------------------------------------------------------ the cases


@dataclass
class Case:
    id: str
    argv: Sequence[str]
    codes: tuple[int, ...] = (2,)
    damage: Callable[[Path], None] | None = None
    # Paths (relative to the store root) the command may add, change or remove.
    may_change: Callable[[str], bool] = lambda rel: False
    # For exit 0 on a damaged store: text the output must contain.
    names: str | None = None
    fifo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _put(rel: str, data: bytes | str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif os.path.lexists(p):
            p.unlink()
        p.write_bytes(data if isinstance(data, bytes) else data.encode())

    return damage


def _mkdir(rel: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()

    return damage


def _fifo(rel: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        (root / rel).unlink()
        os.mkfifo(root / rel)

    return damage


def _symlink(rel: str, target: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        (root / rel).unlink()
        os.symlink(target, root / rel)

    return damage


BAD_VALUES = ["-1", "0", "1e309", "nan", "inf", "-inf", "", "10x", "x" * 10_000, "[/x]", "\x1b[2J", "9" * 5000, "0x10"]


def knob_cases() -> list[Case]:
    cases = []
    for name, spec in FIELDS.items():
        if name in ("domain", "backend", "gpu"):
            continue
        flag = "--" + name.replace("_", "-")
        if spec.kind is bool:
            cases.append(Case(f"train-{name}-value", ["train", "--domain", "planning", f"{flag}=yes"]))
            continue
        for value in BAD_VALUES:
            if spec.choices is None and spec.kind is int and value == "0" and (spec.minimum or 0) <= 0:
                continue  # 0 is allowed for this knob
            if spec.choices is None and spec.kind is float and value == "0" and (spec.minimum or 0) <= 0:
                continue
            cases.append(Case(f"train-{name}-{value[:12]!r}", ["train", "--domain", "planning", flag, value]))
    # Values each allowed alone, refused together (validated before any run dir is made).
    cases += [
        Case("train-odd-hidden", ["train", "--domain", "planning", "--hidden", "17"]),
        Case("train-amp-on-cpu", ["train", "--domain", "planning", "--amp", "--device", "cpu"]),
        Case("train-batch-over-split", ["train", "--domain", "planning", "--num-graphs", "20", "--batch-size", "64"]),
        Case("train-bad-domain", ["train", "--domain", "[/x]"]),
        Case("train-no-domain", ["train"]),
        Case("train-name-path", ["train", "--domain", "planning", "--name", "../x", "--epochs", "1", "--device", "cpu"]),
        Case("train-name-long", ["train", "--domain", "planning", "--name", "x" * 300, "--device", "cpu"]),
        Case("train-name-taken", ["train", "--domain", "planning", "--name", "good", "--device", "cpu"]),
        Case("train-name-all", ["train", "--domain", "all", "--name", "n1", "--device", "cpu"]),
        Case("train-backend", ["train", "--domain", "planning", "--backend", "cloud"]),
        Case("train-unknown-flag", ["train", "--domain", "planning", "--learning-rate", "1"]),
    ]
    if not _cuda():
        cases.append(Case("train-cuda-missing", ["train", "--domain", "planning", "--device", "cuda", "--epochs", "1"]))
    return cases


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


BAD_REFS = ["../x", "a/b/c", "", ".hidden", "x" * 300, "[/x]", "\x1b[2J", "planning/", "/etc/passwd", "nope", "planning/../kg", "-"]


def ref_cases() -> list[Case]:
    cases = []
    for ref in BAD_REFS:
        r = ref[:10]
        cases += [
            Case(f"show-{r!r}", ["runs", "show", ref]),
            Case(f"delete-{r!r}", ["runs", "delete", ref, "--yes"]),
            Case(f"eval-{r!r}", ["eval", ref]),
            Case(f"export-{r!r}", ["export", ref]),
            Case(f"resume-{r!r}", ["resume", ref]),
            Case(f"stop-{r!r}", ["stop", ref]),
            Case(f"attach-{r!r}", ["attach", ref, "--headless"]),
            Case(f"compare-{r!r}", ["compare", ref]),
        ]
    return cases


def root_cases(tmp: Path) -> list[Case]:
    afile = tmp / "a-file"
    afile.write_text("not a store")
    long = str(tmp / ("x" * 5000))
    cases = []
    for label, root in [("file", str(afile)), ("proc", "/proc"), ("proc-sub", "/proc/self"), ("devnull", "/dev/null"), ("long", long)]:
        for argv in (["runs", "list"], ["runs", "show", "good"], ["compare"], ["train", "--domain", "planning", "--epochs", "1", "--device", "cpu"], ["sweep", "list"]):
            cases.append(Case(f"root-{label}-{' '.join(argv[:2])}", [argv[0], "--runs-dir", root, *argv[1:]] if argv[0] != "runs" else ["runs", argv[1], "--runs-dir", root, *argv[2:]]))
    cases.append(Case("env-unknown-user", ["runs", "list"], extra={"env": "~no-such-user-zz/runs"}))
    cases.append(Case("env-unknown-user-train", ["train", "--domain", "planning", "--device", "cpu"], extra={"env": "~no-such-user-zz/runs"}))
    return cases


CONFIG = "planning/bad/config.json"
EVENTS = "planning/bad/events.jsonl"
CKPT = "planning/bad/best_model.pt"


def damaged_cases() -> list[Case]:
    bad_configs: dict[str, Callable[[Path], None]] = {
        "truncated": _put(CONFIG, '{"domain": "planning", "epo'),
        "binary": _put(CONFIG, bytes(range(256)) * 4),
        "list": _put(CONFIG, "[]"),
        "null": _put(CONFIG, "null"),
        "string": _put(CONFIG, '"planning"'),
        "inf-epochs": _put(CONFIG, '{"domain": "planning", "epochs": 1e999}'),
        "huge-int": _put(CONFIG, '{"domain": "planning", "epochs": ' + "9" * 5000 + "}"),
        "nested": _put(CONFIG, "[" * 100_000 + "]" * 100_000),
        "wrong-types": _put(CONFIG, '{"domain": ["planning"], "epochs": "many", "lr": {}, "amp": "maybe"}'),
        "unknown-key": _put(CONFIG, '{"domain": "planning", "\\u001b[2J": 1, "[/x]": 2}'),
        "bad-domain": _put(CONFIG, '{"domain": "[red]x[/red]"}'),
        "empty": _put(CONFIG, ""),
        "utf16": _put(CONFIG, json.dumps({"domain": "planning"}).encode("utf-16")),
        "directory": _mkdir(CONFIG),
        "symlink-loop": _symlink(CONFIG, "config.json"),
        "symlink-devnull": _symlink(CONFIG, "/dev/null"),
        "fifo": _fifo(CONFIG),
    }
    bad_events: dict[str, Callable[[Path], None]] = {
        "binary": _put(EVENTS, os.urandom(4096)),
        "huge-line": _put(EVENTS, b'{"v":1,"seq":0,"t":1,"type":"log","message":"' + b"x" * 10_000_000 + b'"}\n'),
        "wrong-types": _put(
            EVENTS,
            b'{"v":1,"seq":"0","t":"x","type":5}\n{"v":1,"seq":1,"t":1,"type":"epoch_end","epoch":"ten","loss":[]}\n'
            b'{"v":1,"seq":2,"t":1,"type":"eval","split":"val","loss":{},"acc":"x","best_epoch":[]}\n'
            b'{"v":1,"seq":3,"t":1,"type":"checkpoint","file":["x"],"epoch":{}}\n'
            b'{"v":1,"seq":4,"t":1,"type":"failed","error":{"x":1},"traceback":5}\n'
            b'{"v":1,"seq":5,"t":1e999,"type":"finished","test":"x","best_val_loss":"y"}\n',
        ),
        "markup-escapes": _put(
            EVENTS,
            b'{"v":1,"seq":0,"t":1,"type":"run_started","run":"[/x]","domain":"\\u001b[2J","epochs":"[bold]"}\n'
            b'{"v":1,"seq":1,"t":1,"type":"failed","error":"[/red] \\u001b]0;title\\u0007 \\r\\n","hint":"[link=x]"}\n',
        ),
        "huge-seq": _put(EVENTS, b'{"v":1,"seq":' + b"9" * 5000 + b',"t":1,"type":"log"}\n'),
        "truncated": _put(EVENTS, _events_bytes(finish=False)[:-17]),
        "nul-bytes": _put(EVENTS, b"\0" * 10_000),
        "directory": _mkdir(EVENTS),
        "symlink-devnull": _symlink(EVENTS, "/dev/null"),
        "symlink-other": _symlink(EVENTS, "../../kg/other/events.jsonl"),
        "fifo": _fifo(EVENTS),
    }
    bad_ckpts: dict[str, Callable[[Path], None]] = {
        "truncated": lambda root: (root / CKPT).write_bytes(checkpoint_bytes("planning")[:500]),
        "empty": _put(CKPT, b""),
        "binary": _put(CKPT, os.urandom(2048)),
        "text": _put(CKPT, "[/x] not a checkpoint"),
        "config-list": lambda root: (root / CKPT).write_bytes(checkpoint_bytes("planning", config=[1, 2])),
        "config-bad": lambda root: (root / CKPT).write_bytes(checkpoint_bytes("planning", config={"epochs": -5})),
        "foreign-domain": lambda root: (root / CKPT).write_bytes(checkpoint_bytes("kg")),
        "directory": _mkdir(CKPT),
        "fifo": _fifo(CKPT),
    }
    other_json = {
        "results-binary": _put("planning/bad/final_results.json", os.urandom(300)),
        "results-list": _put("planning/bad/final_results.json", "[1]"),
        "process-huge": _put("planning/bad/process.json", '{"pid": ' + "9" * 5000 + "}"),
        "process-types": _put("planning/bad/process.json", '{"pid": "x", "host": 5, "started": []}'),
        "history-junk": _put("planning/bad/training_history.json", b"\xff\xfe{"),
    }

    cases: list[Case] = []
    out_ok = lambda rel: rel == "planning/bad" or rel.startswith("planning/bad/evaluation_")  # noqa: E731
    unparsable = {"truncated", "binary", "list", "null", "string", "huge-int", "nested", "empty", "utf16", "directory", "symlink-loop", "symlink-devnull", "fifo"}
    for label, damage in bad_configs.items():
        fifo = label == "fifo"
        cases += [
            Case(f"config-{label}-list", ["runs", "list"], damage=damage, fifo=fifo, codes=(0,), names=BAD if label in unparsable else None),
            Case(f"config-{label}-list-json", ["runs", "list", "--json"], damage=damage, fifo=fifo, codes=(0,), names="config" if label in unparsable else None),
            Case(f"config-{label}-resume", ["resume", BAD], damage=damage, fifo=fifo, codes=(2,)),
            Case(f"config-{label}-show", ["runs", "show", BAD], damage=damage, fifo=fifo, codes=(0, 2)),
            Case(f"config-{label}-compare", ["compare", BAD, GOOD], damage=damage, fifo=fifo, codes=(0, 2)),
            Case(f"config-{label}-eval", ["eval", BAD], damage=damage, fifo=fifo, codes=(0, 2), may_change=out_ok),
        ]
    for label, damage in bad_events.items():
        fifo = label == "fifo"
        cases += [
            Case(f"events-{label}-list", ["runs", "list"], damage=damage, fifo=fifo, codes=(0,)),
            Case(f"events-{label}-show", ["runs", "show", BAD], damage=damage, fifo=fifo, codes=(0, 2)),
            Case(f"events-{label}-show-json", ["runs", "show", BAD, "--json"], damage=damage, fifo=fifo, codes=(0, 2)),
            Case(f"events-{label}-attach", ["attach", BAD, "--headless"], damage=damage, fifo=fifo, codes=(0, 1, 2)),
            Case(f"events-{label}-stop", ["stop", BAD], damage=damage, fifo=fifo, codes=(1, 2)),
            Case(f"events-{label}-compare", ["compare"], damage=damage, fifo=fifo, codes=(0, 2)),
        ]
        for fmt in ("md", "csv", "json"):
            cases.append(
                Case(f"events-{label}-export-{fmt}", ["export", BAD, "--format", fmt, "--out", "{out}"], damage=damage, fifo=fifo, codes=(0, 2))
            )
    for label, damage in bad_ckpts.items():
        fifo = label == "fifo"
        cases += [
            Case(f"ckpt-{label}-eval", ["eval", BAD], damage=damage, fifo=fifo),
            Case(f"ckpt-{label}-eval-json", ["eval", BAD, "--json", "--checkpoint", "best_model.pt"], damage=damage, fifo=fifo),
            Case(f"ckpt-{label}-show", ["runs", "show", BAD], damage=damage, fifo=fifo, codes=(0,)),
        ]
    for label, damage in other_json.items():
        cases += [
            Case(f"{label}-list", ["runs", "list"], damage=damage, codes=(0,)),
            Case(f"{label}-show", ["runs", "show", BAD], damage=damage, codes=(0, 2)),
            Case(f"{label}-stop", ["stop", BAD], damage=damage, codes=(1, 2)),
        ]
    # Deleting a damaged run removes that run and nothing else.
    in_bad = lambda rel: rel == "planning/bad" or rel.startswith("planning/bad/") or rel == "planning"  # noqa: E731
    for label in ("binary", "fifo", "directory"):
        cases.append(Case(f"config-{label}-delete", ["runs", "delete", BAD, "--yes"], damage=bad_configs[label], codes=(0,), may_change=in_bad))
    return cases


def flag_cases() -> list[Case]:
    cases = [
        Case("eval-device", ["eval", GOOD, "--device", "tpu"]),
        Case("eval-ckpt-missing", ["eval", GOOD, "--checkpoint", "missing.pt"]),
        Case("eval-ckpt-escape", ["eval", GOOD, "--checkpoint", "\x1b[2J[/x].pt"]),
        Case("eval-ckpt-long", ["eval", GOOD, "--checkpoint", "x" * 5000]),
        Case("eval-ckpt-foreign-path", ["eval", GOOD, "--checkpoint", "../../kg/other/best_model.pt"]),
        Case("eval-ckpt-foreign-abs", ["eval", GOOD, "--checkpoint", "{root}/kg/other/best_model.pt"]),
        Case("eval-ckpt-config", ["eval", GOOD, "--checkpoint", "config.json"]),
        Case("eval-ckpt-dir", ["eval", GOOD, "--checkpoint", "."]),
        Case("export-format", ["export", GOOD, "--format", "xml"]),
        Case("export-out-file", ["export", GOOD, "--out", "{afile}"]),
        Case("export-out-proc", ["export", GOOD, "--out", "/proc/nope"]),
        Case("export-out-long", ["export", GOOD, "--out", "/tmp/" + "x" * 5000]),
        Case("compare-by", ["compare", "--by", "speed"]),
        Case("compare-format", ["compare", "--format", "html"]),
        Case("compare-md-out-file", ["compare", "--format", "md", "--out", "{afile}"]),
        Case("compare-twice", ["compare", GOOD, GOOD, "nope"], codes=(0, 2)),
        Case("stop-wait-nan", ["stop", GOOD, "--wait", "nan"], codes=(1, 2)),
        Case("stop-wait-text", ["stop", GOOD, "--wait", "soon"]),
        Case("stop-finished", ["stop", GOOD], codes=(1,)),
        Case("resume-finished", ["resume", GOOD]),
        Case("resume-ckpt-missing", ["resume", BAD, "--checkpoint", "missing.pt"]),
        Case("resume-ckpt-foreign", ["resume", BAD, "--checkpoint", "../../kg/other/best_model.pt"]),
        Case("resume-ckpt-escape", ["resume", BAD, "--checkpoint", "\x1b[2J"]),
        Case("delete-no-yes", ["runs", "delete", GOOD]),
        Case("list-domain", ["runs", "list", "--domain", "[/x]"]),
        Case("attach-no-run-headless", ["attach", "--headless"]),
        Case("data-domain", ["data", "stats", "--domain", "chess"]),
        Case("data-no-domain", ["data", "stats"]),
        Case("data-num-graphs", ["data", "stats", "--domain", "kg", "--num-graphs", "5"]),
        Case("data-num-graphs-huge", ["data", "stats", "--domain", "kg", "--num-graphs", "9" * 5000]),
        Case("data-seed", ["data", "stats", "--domain", "kg", "--seed", "-3"]),
        Case("data-seed-text", ["data", "stats", "--domain", "kg", "--seed", "\x1b[2J"]),
        Case("model-hidden", ["model", "summary", "--domain", "kg", "--hidden", "nan"]),
        Case("unknown-command", ["frobnicate"]),
        Case("runs-no-action", ["runs"]),
    ]
    grids = [
        ["--grid", "lr"],
        ["--grid", "lr="],
        ["--grid", "lr=,"],
        ["--grid", "lr=nan"],
        ["--grid", "lr=1e309"],
        ["--grid", "nope=1,2"],
        ["--grid", "epochs=1,x"],
        ["--grid", "epochs=" + ",".join(["1"] * 3)],
        ["--grid", "hidden=17"],
        ["--grid", "domain=chess"],
        ["--grid", "[/x]=1"],
        ["--grid", "lr=1e-3", "--grid", "lr=1e-4"],
        ["--grid", "epochs=" + "9" * 5000],
        ["--configs", "{afile}"],
        ["--configs", "/nonexistent.json"],
        ["--configs", "{root}/planning/bad/events.jsonl"],
        ["--max-parallel", "0"],
        ["--metric", "speed"],
        ["--domain", "chess,kg"],
        ["--name", "../x", "--grid", "lr=1e-3,1e-4"],
    ]
    for i, g in enumerate(grids):
        cases.append(Case(f"sweep-grid-{i}-{g[-1][:12]!r}", ["sweep", "--domain", "planning", *g, "--epochs", "1", "--device", "cpu"]))
    cases += [
        Case("sweep-show-missing", ["sweep", "show", "nope"]),
        Case("sweep-show-bad", ["sweep", "show", "../x"]),
        Case("sweep-resume-missing", ["sweep", "resume", "[/x]"]),
        Case("sweep-stop-missing", ["sweep", "stop", "nope"]),
    ]
    return cases


# ------------------------------------------------------------------ the run


class Hang(Exception):
    pass


class WouldTrain(BaseException):
    """A fuzz input got past validation to where a run or sweep is created: a test bug or a validation hole."""


def _would_train(*args: Any, **kwargs: Any) -> Any:
    raise WouldTrain("a run or sweep would be created")


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang()


def _call(argv: Sequence[str]) -> tuple[int, str]:
    from tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except (Hang, WouldTrain):
            raise
        except BaseException:
            import traceback

            traceback.print_exc(file=err)
            code = -1
    return code, out.getvalue() + err.getvalue()


def test_cli_fuzz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    import tui.cli.sweeps
    import tui.cli.training

    # Nothing here may train: the guard turns "got past validation" into a reported failure.
    for module, name in ((tui.cli.training, "_detach"), (tui.cli.training, "run_attached"), (tui.cli.sweeps, "_run_attached"), (tui.cli.sweeps, "_launch")):
        monkeypatch.setattr(module, name, _would_train)
    template = tmp_path / "template"
    build_store(template)
    cases = knob_cases() + ref_cases() + root_cases(tmp_path) + damaged_cases() + flag_cases()
    afile = tmp_path / "a-file"
    counts = {"tried": 0, "tracebacks": 0, "hangs": 0, "wrong_code": 0, "store_changed": 0, "unnamed_problem": 0}
    only = os.environ.get("CLI_FUZZ_ONLY")  # a substring of case ids, to rerun a few
    if only:
        cases = [c for c in cases if only in c.id]
    failures: list[str] = []
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for i, case in enumerate(cases):
            root = tmp_path / f"s{i}"
            shutil.copytree(template, root, symlinks=True)
            if case.damage is not None:
                case.damage(root)
            out_dir = tmp_path / f"out{i}"
            argv = [a.replace("{root}", str(root)).replace("{afile}", str(afile)).replace("{out}", str(out_dir)) for a in case.argv]
            monkeypatch.setenv("NSM_RUNS_DIR", case.extra.get("env", str(root)))
            before = snapshot(root)
            counts["tried"] += 1
            signal.alarm(CASE_SECONDS)
            try:
                code, text = _call(argv)
            except Hang:
                counts["hangs"] += 1
                failures.append(f"{case.id}: hang (> {CASE_SECONDS} s)")
                continue
            except WouldTrain:
                counts["wrong_code"] += 1
                failures.append(f"{case.id}: got past validation to training")
                continue
            finally:
                signal.alarm(0)
            after = snapshot(root)
            if TRACEBACK in text:
                counts["tracebacks"] += 1
                failures.append(f"{case.id}: traceback\n{text[-1500:]}")
                continue
            if code not in case.codes:
                counts["wrong_code"] += 1
                failures.append(f"{case.id}: exit {code}, expected {case.codes}: {text[-400:]!r}")
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) and not case.may_change(k))
            if changed:
                counts["store_changed"] += 1
                failures.append(f"{case.id}: store changed: {changed[:5]}")
            if code == 0 and case.names and case.names not in text:
                counts["unnamed_problem"] += 1
                failures.append(f"{case.id}: exit 0 without naming {case.names}: {text[-400:]!r}")
            if code != 0 and code in case.codes and "error" not in text and "not running" not in text and code == 2:
                failures.append(f"{case.id}: exit {code} without an error line: {text[-300:]!r}")
            shutil.rmtree(root, ignore_errors=True)
    finally:
        signal.signal(signal.SIGALRM, previous)
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"cli fuzz: {summary}")
    assert counts["tried"] >= 150, summary
    assert not failures, f"{summary}\n" + "\n".join(failures)


# ------------------------------------------------------------------ pinned messages


def _run_cli(monkeypatch: pytest.MonkeyPatch, root: Path, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("NSM_RUNS_DIR", str(root))
    return _call(argv)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    build_store(root)
    return root


def test_eval_refuses_a_checkpoint_of_another_run(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = _run_cli(monkeypatch, store, "eval", GOOD, "--checkpoint", "../../kg/other/best_model.pt")
    assert code == 2 and "foreign" in text and "kg/other" in text and GOOD in text, text
    code, text = _run_cli(monkeypatch, store, "eval", GOOD, "--checkpoint", str(store / "kg/other/best_model.pt"))
    assert code == 2 and "belongs to run kg/other" in text, text


def test_eval_refuses_a_checkpoint_of_another_domain_or_vocabulary(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = store / GOOD / "best_model.pt"
    ckpt.write_bytes(checkpoint_bytes("kg"))
    code, text = _run_cli(monkeypatch, store, "eval", GOOD)
    assert code == 2 and "domain kg" in text and f"{GOOD} (domain planning)" in text, text

    from nsm.data import domain_spec

    vocab = {**domain_spec("planning").to_dict(), "name": "planning-v0", "relations": ["before"]}
    ckpt.write_bytes(checkpoint_bytes("planning", vocabulary=vocab))
    code, text = _run_cli(monkeypatch, store, "eval", GOOD)
    assert code == 2 and "'planning-v0'" in text and "'planning'" in text and "vocabulary" in text, text

    ckpt.write_bytes(checkpoint_bytes("planning", config=RunConfig(domain="planning", **{**TINY, "num_graphs": 80}).to_dict()))
    code, text = _run_cli(monkeypatch, store, "eval", GOOD)
    assert code == 2 and "does not belong" in text and "num_graphs" in text, text

    ckpt.write_bytes(checkpoint_bytes("planning", config=["not", "a", "mapping"]))
    code, text = _run_cli(monkeypatch, store, "eval", GOOD)
    assert code == 2 and "not a mapping" not in text and "should be a mapping" in text, text


def test_a_huge_number_in_one_config_lists_that_run_as_damaged(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (store / BAD / "config.json").write_text('{"epochs": ' + "9" * 5000 + "}")
    code, text = _run_cli(monkeypatch, store, "runs", "list")
    assert code == 0 and TRACEBACK not in text, text
    assert "good" in text and "other" in text  # the rest of the store is listed
    assert f"! {BAD}:" in text and "cannot be parsed" in text, text
    code, text = _run_cli(monkeypatch, store, "resume", BAD)
    assert code == 2 and text.count("\n") == 1 and "config" in text, text


def test_store_roots_that_cannot_be_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    afile = tmp_path / "f"
    afile.write_text("")
    for root, words in [(str(afile), "not a directory"), ("/proc/self", "system folder"), ("/dev/null", "system folder"), (str(tmp_path / ("x" * 5000)), "too long")]:
        code, text = _call(["runs", "list", "--runs-dir", root])
        assert code == 2 and words in text and text.count("\n") == 1, text
    monkeypatch.setenv("NSM_RUNS_DIR", "~no-such-user-zz/runs")
    code, text = _call(["runs", "list"])
    assert code == 2 and "NSM_RUNS_DIR" in text and "no such user" in text, text


@pytest.mark.skipif(_cuda(), reason="this machine has CUDA")
def test_train_on_cuda_without_cuda_is_refused_before_a_run_dir_exists(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    code, text = _call(["train", "--domain", "planning", "--device", "cuda", "--runs-dir", str(root)])
    assert code == 2 and "cuda" in text and not root.exists(), text
