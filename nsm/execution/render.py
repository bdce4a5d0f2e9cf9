"""One renderer: an event becomes the same line of text in every viewer.

The dashboard's log pane, the CLI's attached progress, `attach --headless`,
Modal's attach and a sweep's runner all print what `render` returns, so a
run reads the same wherever it is watched. Every field is read defensively:
a log written by another version (or damaged) renders, it never raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nsm.runs import events as ev
from nsm.text import plain

# What each kind of line is, so that a viewer can leave some out: the
# dashboard draws epochs as charts and has no use for their lines.
MILESTONE, EPOCH, DETAIL = "milestone", "epoch", "detail"


@dataclass(frozen=True)
class Line:
    level: str  # info / event / warning / error
    text: str
    kind: str = MILESTONE

    def __post_init__(self) -> None:
        # A run's files can hold anything: every viewer gets text a terminal only prints.
        object.__setattr__(self, "text", plain(self.text))


def number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def fmt_num(x: Any, digits: int = 4) -> str:
    v = number(x)
    if v is None:
        return "-"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def fmt_duration(seconds: Any) -> str:
    s = number(seconds)
    if s is None or s < 0:
        return "-"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


# Every viewer stamps a run's lines with the same clock, and says which it is once.
CLOCK_NOTE = "times are elapsed since the run started"


def elapsed_stamp(t: Any, t0: Any) -> str:
    """A line's time on that clock: "+1m05s" after the run's first start."""
    t, t0 = number(t), number(t0)
    if t is None or t0 is None:
        return ""
    return "+" + fmt_duration(max(0.0, t - t0))


def integer(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def render(e: dict[str, Any]) -> list[Line]:
    """The lines an event shows as (none for progress and GPU samples)."""
    kind = e.get("type")
    if kind == ev.RUN_STARTED:
        parts = [f"run started: {e.get('run') or ''}".rstrip(": ")]
        if integer(e.get("params")) is not None:
            parts.append(f"{e['params']:,} params")
        if integer(e.get("train_size")) is not None:
            parts.append(f"{e['train_size']} train graphs")
        env = e.get("environment") if isinstance(e.get("environment"), dict) else {}
        parts.append(f"device {env.get('device', '?')}")
        return [Line("event", " · ".join(parts))]
    if kind == ev.RESUMED:
        return [Line("event", f"resumed from {e.get('checkpoint')} (epoch {e.get('epoch')}, step {e.get('step')})")]
    if kind == ev.EPOCH_END:
        text = f"epoch {e.get('epoch')}: loss {fmt_num(e.get('loss'))} acc {fmt_num(e.get('acc'), 3)} cycle {fmt_num(e.get('cycle_loss'))}"
        text += f" lr {fmt_num(e.get('lr'))}" if number(e.get("lr")) is not None else ""
        if number(e.get("graphs_per_s")) is not None:
            text += f" · {e['graphs_per_s']:.0f} graphs/s"
        return [Line("info", text, EPOCH)]
    if kind == ev.EVAL:
        if e.get("split", "val") != "val":
            return []
        best = " — new best" if e.get("is_best") else ""
        return [Line("event", f"epoch {e.get('epoch')}: val loss {fmt_num(e.get('loss'))} acc {fmt_num(e.get('acc'), 3)}{best}")]
    if kind == ev.CHECKPOINT:
        return [Line("event", f"saved {e.get('file')} ({e.get('kind')}, {position(e)})", DETAIL if e.get("kind") == "best" else MILESTONE)]
    if kind == ev.CHECKPOINT_REMOVED:
        return [Line("info", f"removed {e.get('file')} (KEEP_LAST={e.get('keep_last')}: older than the newest periodic checkpoints)", DETAIL)]
    if kind == ev.LOG:
        level = e.get("level") if e.get("level") in ("info", "warning", "error") else "info"
        return [Line(level, str(e.get("message", "")))]
    if kind == ev.FINISHED:
        test = e.get("test") if isinstance(e.get("test"), dict) else {}
        return [
            Line(
                "event",
                f"finished ({e.get('reason') or 'completed'}) after {e.get('epochs_done')} epochs: "
                f"test acc {fmt_num(test.get('acc'), 3)}, loss {fmt_num(test.get('loss'))}, "
                f"{ood_accuracies(e.get('ood'))}in {fmt_duration(e.get('total_time_s'))}",
            )
        ]
    if kind == ev.INTERRUPTED:
        return [
            Line(
                "warning",
                f"interrupted {position(e, 'after ')} ({e.get('reason') or 'stop requested'}); "
                f"checkpoint {e.get('checkpoint')}",
            )
        ]
    if kind == ev.FAILED:
        lines = [Line("error", f"failed: {failure_text(e)}")]
        if e.get("hint"):
            lines.append(Line("error", f"hint: {e.get('hint')}"))
        return lines
    return []


def position(e: dict[str, Any], whole: str = "") -> str:
    """Where in the run an event's (epoch, step) is. The protocol's epoch counts whole
    epochs done, so a step inside the next one is "epoch N+1 at step K"."""
    epoch, step = integer(e.get("epoch")), integer(e.get("step")) or 0
    if epoch is None:
        return f"epoch {e.get('epoch')}"
    return f"in epoch {epoch + 1} at step {step}" if step else f"{whole}epoch {epoch}"


def failure_text(e: dict[str, Any]) -> str:
    return str(e.get("error") or e.get("error_type") or "the run failed")


def render_text(e: dict[str, Any], *, epochs: bool = True) -> list[str]:
    """Lines for a terminal or a log file (the CLI's progress, a sweep's runner, Modal's attach):
    best-model saves are left out (the eval line says "new best"); `epochs=False` drops epochs too."""
    return [line.text for line in render(e) if line.kind != DETAIL and (epochs or line.kind != EPOCH)]


def ood_accuracies(ood: Any) -> str:
    """`OOD 11-20 acc 0.851, OOD 21-40 acc 0.702, ` from a FINISHED event's ood payload ('' without one)."""
    from nsm.runs.compare import ood_label  # the column names compare uses, so both read alike

    if not isinstance(ood, dict):
        return ""
    parts = [f"{ood_label(str(name))} acc {fmt_num(v.get('acc'), 3)}" for name, v in ood.items() if isinstance(v, dict)]
    return "".join(f"{p}, " for p in parts)
