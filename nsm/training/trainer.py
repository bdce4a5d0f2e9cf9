"""The training engine: one run of one resolved config, told entirely through events.

Exact resume: the order of the training graphs in epoch e is a pure function
of (seed, e), and a checkpoint holds, besides model/optimizer/scheduler, the
metric sums of the unfinished epoch and the RNG states. Resuming at step k of
epoch e therefore replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from nsm.config import FIELDS, RunConfig, validate_config
from nsm.data import DomainDataset, load_dataset
from nsm.models import build_model, count_parameters
from nsm.runs import Run
from nsm.runs import events as ev
from nsm.runs.checkpoints import BEST_FILE, checkpoint_file_name
from nsm.runs.store import FAILURE_FILE, RESERVE_FILE
from nsm.runs.history import HistoryBuilder
from nsm.training.bus import EventBus, Sink
from nsm.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nsm.training.log_capture import RunLogCapture, capture_run_logs
from nsm.training.evaluation import evaluate, loss_metrics

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25  # at most 4 progress events a second
HEARTBEAT_INTERVAL_S = 5.0
GRAD_CLIP = 1.0
WEIGHT_DECAY = 1e-4
WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.02

Outcome = str  # "finished" | "interrupted" | "failed"


class TrainingError(RuntimeError):
    """A failure with a message meant for the user (and maybe a hint)."""

    def __init__(self, message: str, hint: str | None = None, error_type: str = "error", **extra: Any):
        super().__init__(message)
        self.hint = hint
        self.error_type = error_type
        self.extra = extra


@dataclass
class EpochSums:
    """Running sums of the epoch in progress (saved in a mid-epoch checkpoint)."""

    steps: int = 0
    graphs: int = 0
    loss: float = 0.0
    task_loss: float = 0.0
    cycle_loss: float = 0.0
    correct: int = 0
    grad_norm: float = 0.0
    time_s: float = 0.0


Divergence = tuple[int, float]  # (0-based step of the epoch, the loss it had)


class ReferenceSums:
    """Today's bookkeeping, kept as the reference path (`Trainer(step_path="reference")`):
    each step reads its numbers back to the host, which on a GPU is a synchronisation
    per value, and the loss is checked before the step is applied."""

    def __init__(self, base: EpochSums):
        self.sums = base

    def add(self, step: int, n: int, loss: torch.Tensor, task: torch.Tensor, cycle: torch.Tensor,
            correct: torch.Tensor, grad_norm: torch.Tensor) -> None:
        s = self.sums
        s.steps += 1
        s.graphs += n
        s.loss += loss.item() * n
        s.task_loss += task.item() * n
        s.cycle_loss += cycle.item() * n
        s.correct += int(correct)
        s.grad_norm += float(grad_norm)

    def read(self) -> tuple[EpochSums, Divergence | None]:
        return self.sums, None


class DeviceSums:
    """The sums of the epoch in progress, kept on the training device and read back
    only when asked (progress events, the epoch end, an interrupt).

    One float64 buffer: the five sums, then the loss of every step of the epoch, so
    a single read returns the sums and tells whether (and at which step first) the
    loss stopped being finite. The float64 sums add the same float32 values in the
    same order as ReferenceSums' Python floats, so the numbers are identical.
    """

    SLOTS = 5  # loss, task_loss, cycle_loss, correct, grad_norm

    def __init__(self, base: EpochSums, device: torch.device, steps_per_epoch: int):
        self.host = EpochSums(steps=base.steps, graphs=base.graphs, time_s=base.time_s)
        start = torch.tensor(
            [base.loss, base.task_loss, base.cycle_loss, float(base.correct), base.grad_norm], dtype=torch.float64
        )
        self.buf = torch.zeros(self.SLOTS + steps_per_epoch, dtype=torch.float64, device=device)
        self.buf[: self.SLOTS] = start.to(device)
        self.checked = self.done = base.steps  # losses of steps [checked, done) not yet looked at

    def add(self, step: int, n: int, loss: torch.Tensor, task: torch.Tensor, cycle: torch.Tensor,
            correct: torch.Tensor, grad_norm: torch.Tensor) -> None:
        buf = self.buf
        buf[:3] += torch.stack([loss.detach(), task.detach(), cycle.detach()]).double() * n
        buf[3] += correct
        buf[4] += grad_norm.detach()
        buf[self.SLOTS + step] = loss.detach()
        self.host.steps += 1
        self.host.graphs += n
        self.done = step + 1

    def read(self) -> tuple[EpochSums, Divergence | None]:
        k = self.SLOTS
        values = torch.cat([self.buf[:k], self.buf[k + self.checked : k + self.done]]).tolist()
        for i, value in enumerate(values[k:]):
            if not math.isfinite(value):
                return self.host, (self.checked + i, value)
        self.checked = self.done
        h = self.host
        loss, task, cycle, correct, grad_norm = values[:k]
        self.host = EpochSums(
            steps=h.steps, graphs=h.graphs, loss=loss, task_loss=task, cycle_loss=cycle,
            correct=int(correct), grad_norm=grad_norm, time_s=h.time_s,
        )
        return self.host, None


def default_threads() -> int:
    """torch CPU threads for THREADS=0: the usable cores less one, at least one.

    Steps of these small graphs are many short ops: with every core in use, one
    busy neighbour (the TUI, another run, a test) stalls each op's thread barrier
    (measured on a shared 2-core box: 2 threads 8.8 s/step, 1 thread 0.66 s/step).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class BatchFeed:
    """The steps of one epoch as (step, graph ids, batch or None).

    With NUM_WORKERS > 0, background threads gather the next batches while the
    current step trains (the gathers are torch ops that release the GIL); the
    order is fixed by the epoch's permutation, so results do not change.
    """

    def __init__(
        self, gs: Any, order: torch.Tensor, batch_size: int, start: int, steps: int, workers: int,
        device_order: torch.Tensor | None = None,
    ):
        self.gs, self.order, self.batch_size = gs, order, batch_size
        self.start, self.steps, self.workers = start, steps, workers
        self.device_order = device_order  # the same order on the columns' device: no copy per step
        self._pool: ThreadPoolExecutor | None = None

    def ids(self, step: int) -> torch.Tensor:
        return self.order[step * self.batch_size : (step + 1) * self.batch_size]

    def batch(self, step: int) -> Any:
        dev = None
        if self.device_order is not None:
            dev = self.device_order[step * self.batch_size : (step + 1) * self.batch_size]
        return self.gs.batch(self.ids(step), dev)

    def __enter__(self) -> "BatchFeed":
        if self.workers:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nsm-batches")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, Any]]:
        if self._pool is None:
            for step in range(self.start, self.steps):
                yield step, self.ids(step), self.batch(step)
            return
        ahead: deque[tuple[int, Any]] = deque()
        nxt = self.start
        while True:
            while nxt < self.steps and len(ahead) < 2 * self.workers:
                ahead.append((nxt, self._pool.submit(self.batch, nxt)))
                nxt += 1
            if not ahead:
                return
            step, future = ahead.popleft()
            yield step, self.ids(step), future.result()


def gpu_sample_interval() -> float:
    """Seconds between GPU samples of a run: NSM_GPU_SAMPLE_S, default 1."""
    raw = os.environ.get("NSM_GPU_SAMPLE_S", "")
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        value = 1.0
    return value if value > 0 else 1.0


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


def resolve_device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if name == "cuda":
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise TrainingError(
            f"DEVICE=cuda but torch sees no CUDA GPU (torch {torch.__version__}, {built})",
            hint="use DEVICE=auto or DEVICE=cpu, or run on a machine with an NVIDIA GPU (or the Modal backend)",
            error_type="config",
        )
    return torch.device("cpu")


def lr_lambda(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to FINAL_LR_FRACTION of the peak."""
    warmup = max(1, int(total_steps * WARMUP_FRACTION))

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def environment(device: torch.device) -> dict[str, Any]:
    import torch_geometric

    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "pyg": torch_geometric.__version__,
        "device": str(device),
        "cuda": torch.version.cuda,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["gpu_name"] = torch.cuda.get_device_name(device)
    return env


class Trainer:
    """Train (or resume) one run. Thread-safe `request_stop`; blocking `run`."""

    _logs: RunLogCapture | None = None  # set while run() runs

    def __init__(
        self,
        run: Run,
        config: RunConfig | None = None,
        *,
        resume_from: str | os.PathLike[str] | None = None,
        sinks: Iterable[Sink] = (),
        stop_checks: Iterable[Callable[[], bool]] = (),
        dataset: DomainDataset | None = None,
        threads: int | None = None,
        gpu_interval_s: float | None = None,
        backend: str | None = None,
        on_step: Callable[[int, int], None] | None = None,
        lock: Any = None,
        step_path: str = "device",
    ):
        self.run_dir = run
        self._lock = lock  # an nsm.execution RunLock its launcher took; else run() takes one
        self.config = validate_config((config.to_dict() if config else run.config()))
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self._sinks = list(sinks)
        # The run's stop-request file is always watched: `nsm-tui stop` from any terminal reaches any backend.
        self._stop_checks = [run.stop_requested, *stop_checks]
        self._stop = threading.Event()
        self.stop_reason: str | None = None
        self._dataset = dataset
        self._threads = threads
        self._gpu_interval_s = gpu_interval_s if gpu_interval_s is not None else gpu_sample_interval()
        self.backend = backend or self.config.backend
        self._on_step = on_step  # test hook: called before each step with (epoch, step)
        if step_path not in ("device", "reference"):
            raise ValueError(f"step_path must be 'device' or 'reference' (got {step_path!r})")
        # "reference": today's step (host batches copied each step, numbers read back every
        # step), kept for the equivalence test and the benches; not a user knob.
        self._reference = step_path == "reference"
        self.outcome: Outcome | None = None
        self.bus: EventBus | None = None

    # -- control ------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the run to stop at the next step boundary (with a checkpoint)."""
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    def _should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        for check in self._stop_checks:
            try:
                if check():
                    self.request_stop("stop requested")
                    return True
            except Exception:  # a flaky remote flag must not kill the run
                log.exception("stop check failed")
        return False

    # -- entry point --------------------------------------------------------
    def run(self) -> Outcome:
        """Train until finished, interrupted or failed. RunLocked (before anything is
        written) when another process trains this run."""
        from nsm.runs import lock as run_lock

        if self._lock is None or not self._lock.held:
            self._lock = run_lock.acquire(self.run_dir.path, self.run_dir.ref, purpose="train")
        try:
            # What torch, PyG or our code warns about in this thread becomes `log` events.
            with capture_run_logs(self._log_event) as self._logs:
                return self._run_locked()
        finally:
            # Training is over once the final event is written: a resume may start now,
            # not only when this process has finished exiting.
            self._lock.release()

    def _log_event(self, level: str, message: str, source: str) -> None:
        if self.bus is None:
            raise RuntimeError("no event log yet")
        self.bus.emit(ev.LOG, level=level, message=message, source=source)

    def _flush_logs(self) -> None:
        """Counts of repeated warnings go out before the run's last event (viewers stop there)."""
        if self._logs is not None:
            self._logs.flush()

    def _run_locked(self) -> Outcome:
        sampler = None
        try:
            # A stop sent between the launch and now is for this attempt: only older ones go.
            _clear_stale_stop_request(self.run_dir)
            _remove_orphan_temp_files(self.run_dir.path)
            _remove_file(self.run_dir.path / FAILURE_FILE)
            _make_reserve(self.run_dir.path / RESERVE_FILE)
            self.bus = EventBus(self.run_dir.event_writer(), self._sinks)
            self.history = HistoryBuilder().feed_all(self.run_dir.events())
            self.bus.add_sink(self.history.feed)
            self._add_run_sinks()
            self.run_dir.write_process_info(os.getpid(), backend=self.backend, command=" ".join(sys.argv))
            self._last_heartbeat = 0.0
            self._heartbeat()
            self._setup()
            sampler = self._start_gpu_telemetry()
            self.outcome = self._loop()
        except Exception as exc:
            self.outcome = "failed"
            self._fail(exc)
        finally:
            self._flush_logs()  # what came after the last event, while the log and the sinks are open
            if sampler is not None:
                sampler.stop()
            for sink in getattr(self, "_run_sinks", ()):
                sink.close()
            if self.bus is not None:
                self.bus.close()
            _remove_file(self.run_dir.path / RESERVE_FILE)
            # The attempt is over: a stop request it heard (or one that came too late) must
            # not stop the next start of this run.
            self.run_dir.clear_stop_request()
        return self.outcome

    # -- set-up -------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.config
        torch.set_num_threads(self._threads or cfg.threads or default_threads())
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.use_amp = bool(cfg.amp and self.device.type == "cuda")
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

        t0 = time.time()
        self.dataset = self._dataset or load_dataset(cfg.domain, num_graphs=cfg.num_graphs, seed=cfg.seed)
        self.data_time_s = time.time() - t0
        self.train_set = self.dataset.train
        self.val_set = self.dataset.val
        if not self._reference:  # the columns live where the model trains; batches are gathered there
            self.train_set = self.train_set.to(self.device)
            self.val_set = self.val_set.to(self.device)
        self.steps_per_epoch = math.ceil(len(self.train_set) / cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch

        torch.manual_seed(cfg.seed)
        self.model = build_model(self.dataset.spec, hidden=cfg.hidden, model=cfg.model, pooling=cfg.pooling).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=WEIGHT_DECAY)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(self.total_steps))

        # Progress through the run.
        self.epoch = 0  # completed epochs
        self.step = 0  # steps done of epoch `epoch + 1`
        self.sums = EpochSums()
        self.best_val_loss = math.inf
        self.best_val_acc: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.elapsed_before = 0.0  # run time spent in earlier attempts
        self.last_checkpoint: str | None = None

        if self.resume_from is not None:
            self._restore(self.resume_from)
            self.bus.emit(
                ev.RESUMED,
                checkpoint=self.resume_from.name,
                epoch=self.epoch,
                step=self.step,
                config=cfg.to_dict(),
                environment=environment(self.device),
            )
            self._warn_thread_change()
            self._restore_best_model()
        else:
            self.bus.emit(
                ev.RUN_STARTED,
                run=self.run_dir.name,
                domain=cfg.domain,
                config=cfg.to_dict(),
                environment=environment(self.device),
                params=count_parameters(self.model),
                dataset={**self.dataset.summary(), "data_time_s": round(self.data_time_s, 3)},
                epochs=cfg.epochs,
                steps_per_epoch=self.steps_per_epoch,
                train_size=len(self.train_set),
                backend=self.backend,
            )

    def _restore(self, path: Path) -> None:
        if not path.is_absolute() and not path.exists():
            path = self.run_dir.path / path
        self.resume_from = path
        blob = load_checkpoint(path, map_location=self.device)
        saved = blob["config"]
        # A knob newer than the checkpoint is read as its default (a config.json
        # from before MODEL is an nsm run), as validate_config reads old configs.
        def was(k: str) -> Any:
            return saved.get(k, FIELDS[k].default if k in FIELDS else None)

        mismatch = {
            k: (was(k), v)
            for k, v in self.config.to_dict().items()
            if k not in ("device", "backend", "num_workers", "threads", "gpu") and was(k) != v
        }
        if mismatch:
            what = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in mismatch.items())
            raise TrainingError(
                f"checkpoint {path.name} does not belong to this run's config ({what})",
                hint="resume a run with a checkpoint from its own directory",
                error_type="checkpoint",
            )
        try:
            self.model.load_state_dict(blob["model"])
            self.optimizer.load_state_dict(blob["optimizer"])
            self.scheduler.load_state_dict(blob["scheduler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path.name} does not fit the model: {exc}") from None
        self.epoch = int(blob["epoch"])
        self.step = int(blob["step"])
        self.sums = EpochSums(**blob.get("partial", {}))
        stop = blob.get("early_stop", {})
        self.best_val_loss = float(stop.get("best_val_loss", math.inf))
        self.best_val_acc = stop.get("best_val_acc")
        self.best_epoch = stop.get("best_epoch")
        self.elapsed_before = float(blob.get("elapsed_s", 0.0))
        self._trained_threads = blob.get("threads") if isinstance(blob.get("threads"), int) else self._last_threads()
        rng = blob.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        if "scaler" in blob and self.scaler.is_enabled():
            self.scaler.load_state_dict(blob["scaler"])
        self._find_best_state(path, blob)

    def _last_threads(self) -> int | None:
        """The torch threads of the run's latest start or resume, from its log
        (for checkpoints written before they recorded their own)."""
        for event in reversed(self.run_dir.events()):
            if event.get("type") in (ev.RUN_STARTED, ev.RESUMED):
                env = event.get("environment")
                threads = env.get("threads") if isinstance(env, dict) else None
                return threads if isinstance(threads, int) and not isinstance(threads, bool) else None
        return None

    def _warn_thread_change(self) -> None:
        # Float sums are split across threads differently with another count, so the
        # numbers drift from a run trained with one count: say so, never refuse.
        now, before = torch.get_num_threads(), self._trained_threads
        if before is None or before == now:
            return
        self.bus.emit(
            ev.LOG,
            level="warning",
            message=(
                f"resumed with {now} torch thread{'s' if now != 1 else ''}; the run trained with {before} so far: "
                "numbers will not match a run trained with one count"
            ),
        )

    def _find_best_state(self, path: Path, blob: dict[str, Any]) -> None:
        """The weights of the best epoch as of the restored checkpoint (`best_state`).

        best_model.pt serves when it is of that epoch. After a resume from an
        earlier checkpoint it may be of a later, discarded epoch (or moved aside
        by nsm.runs.timeline.discard_future); then the weights come from the
        epoch-boundary checkpoint of the best epoch, when the run has it (the
        restored one or an earlier periodic one), and `_restore_best_model`
        writes best_model.pt again from that file once the resume is logged.
        """
        self._best_source: Path | None = None  # a checkpoint to copy to best_model.pt
        self._best_note: str | None = None  # a log line for when there is none
        best = self.best_epoch
        if best is None:
            return
        best_path = self.run_dir.path / BEST_FILE
        found_epoch = None
        if best_path.exists():
            try:
                best_blob = load_checkpoint(best_path, map_location="cpu")
            except CheckpointError as exc:
                self.bus.emit(ev.LOG, level="warning", message=f"best model unreadable, keeping the current one: {exc}")
                return
            found_epoch = best_blob.get("epoch")
            if found_epoch == best and best_blob.get("step", 0) == 0:
                self.best_state = best_blob["model"]
                return
        # best_model.pt is missing or of another epoch: look for the weights of epoch `best`.
        candidate = self.run_dir.path / checkpoint_file_name(best)
        if (int(blob["epoch"]), int(blob["step"])) == (best, 0):
            candidate, other = path, blob
        elif candidate.is_file():
            try:
                other = load_checkpoint(candidate, map_location="cpu")
            except CheckpointError:
                other = {}
        else:
            other = {}
        stop = other.get("early_stop") if isinstance(other.get("early_stop"), dict) else {}
        if (other.get("epoch"), other.get("step"), stop.get("best_epoch")) == (best, 0, best):
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in other["model"].items()}
            self._best_source = candidate
            return
        was = f"{BEST_FILE} holds epoch {found_epoch}" if found_epoch is not None else f"there is no {BEST_FILE}"
        self._best_note = (
            f"the best epoch so far is {best}, but {was} and no checkpoint of epoch {best} is left to restore it from: "
            f"{BEST_FILE} is written again at the next improvement of the val loss"
        )
        if found_epoch is not None:
            self._best_note += f" (until then it is the one of epoch {found_epoch}, not of this timeline)"

    def _restore_best_model(self) -> None:
        """After the `resumed` event: write best_model.pt again from the checkpoint
        `_find_best_state` chose, or say why it cannot be."""
        source = getattr(self, "_best_source", None)
        note = getattr(self, "_best_note", None)
        if note:
            self.bus.emit(ev.LOG, level="warning", message=note)
        if source is None:
            return
        from nsm.atomic import atomic_write_bytes

        try:
            data = source.read_bytes()
            atomic_write_bytes(self.run_dir.path / BEST_FILE, data)
        except OSError as exc:
            raise _disk_error(exc, f"could not write {BEST_FILE}", self.last_checkpoint) from None
        val = self.history.to_dict()["val"]
        metrics: dict[str, Any] = {}
        if self.best_epoch in val["epochs"]:
            i = val["epochs"].index(self.best_epoch)
            metrics = {f"val_{k}": val[k][i] for k in ("loss", "task_loss", "cycle_loss", "acc")}
        self.bus.emit(ev.LOG, level="info", message=f"{BEST_FILE} rewritten from {source.name} (best epoch {self.best_epoch})")
        self.bus.emit(
            ev.CHECKPOINT, epoch=self.best_epoch, step=0, file=BEST_FILE, kind="best", size=len(data), metrics=metrics
        )

    # -- the loop -----------------------------------------------------------
    def _loop(self) -> Outcome:
        cfg = self.config
        self.session_start = time.time()
        self.session_steps = 0
        self.eval_time_s = 0.0
        self.evals_done = 0
        self._last_progress = 0.0
        stopped_early = False
        while self.epoch < cfg.epochs:
            epoch = self.epoch + 1
            order = epoch_order(cfg.seed, epoch, len(self.train_set))
            epoch_t0 = time.time()
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            device_order = None
            if self.train_set.device != order.device:
                device_order = order.to(self.train_set.device, non_blocking=True)
            if self._reference:
                self._acc: ReferenceSums | DeviceSums = ReferenceSums(self.sums)
            else:
                self._acc = DeviceSums(self.sums, self.device, self.steps_per_epoch)
            batches = BatchFeed(
                self.train_set, order, cfg.batch_size, self.step, self.steps_per_epoch, cfg.num_workers, device_order
            )
            with batches:
                for step, ids, batch in batches:
                    if self._should_stop():
                        self._read_sums().time_s += time.time() - epoch_t0
                        return self._interrupt()
                    if self._on_step is not None:
                        self._on_step(epoch, step)
                    self._train_step(ids, batch)
                    self.step = step + 1
                    self.session_steps += 1
                    self._maybe_progress(epoch)
            # Reading the sums waits for the device, so the epoch's time includes its work.
            self._read_sums().time_s += time.time() - epoch_t0
            self._end_epoch(epoch)
            if cfg.patience and self.best_epoch is not None and epoch - self.best_epoch >= cfg.patience:
                stopped_early = True
                self.bus.emit(
                    ev.LOG,
                    level="info",
                    message=f"early stopping: val loss has not improved for {cfg.patience} epochs (best at epoch {self.best_epoch})",
                )
                break
        return self._finish(stopped_early)

    def _train_step(self, ids: torch.Tensor, batch: Any = None) -> None:
        cfg = self.config
        if batch is None:
            batch = self.train_set.batch(ids)
        if self._reference:
            del batch.graph_sizes  # today's model pooling: sizes read back from the device
        batch = batch.to(self.device, non_blocking=True)  # a no-op when gathered on the device
        self.model.train()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            out = self.model(batch)
            task = F.cross_entropy(out.logits.float(), batch.y)
            cycle = out.cycle_loss.float()
            loss = task + cfg.cycle_weight * cycle
        if self._reference and not torch.isfinite(loss):
            raise self._divergence(self.step, loss.item())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        correct = (out.logits.argmax(-1) == batch.y).sum()
        self._acc.add(self.step, len(ids), loss, task, cycle, correct, grad_norm)

    def _read_sums(self) -> EpochSums:
        """The epoch's sums, read back from the device (the one synchronisation point);
        a loss that stopped being finite since the last read fails the run here, naming
        the first step it happened at. Steps after it were wasted, never saved."""
        self.sums, diverged = self._acc.read()
        if diverged is not None:
            step, value = diverged
            self.step = step  # the failure names the step as the reference path would
            raise self._divergence(step, value)
        return self.sums

    def _divergence(self, step: int, value: float) -> TrainingError:
        cfg = self.config
        return TrainingError(
            f"the loss became {value} at epoch {self.epoch + 1}, step {step + 1}",
            hint=f"lower LR (now {cfg.lr:g}) or CYCLE_WEIGHT (now {cfg.cycle_weight:g})",
            error_type="divergence",
        )

    # -- time bookkeeping ---------------------------------------------------
    def _elapsed(self) -> float:
        return self.elapsed_before + (time.time() - self.session_start)

    def _eta(self) -> float | None:
        done = self.epoch * self.steps_per_epoch + self.step
        remaining = self.total_steps - done
        if self.session_steps == 0:
            return None
        train_time = (time.time() - self.session_start) - self.eval_time_s
        per_step = train_time / self.session_steps
        evals_left = sum(
            1 for e in range(self.epoch + 1, self.config.epochs + 1) if e % self.config.eval_every == 0 or e == self.config.epochs
        )
        per_eval = self.eval_time_s / self.evals_done if self.evals_done else per_step * 2
        return max(0.0, remaining * per_step + evals_left * per_eval)

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL_S:
            self._last_heartbeat = now
            try:
                self.run_dir.touch_heartbeat()
            except OSError:
                pass  # a missed heartbeat is harmless; the next one may succeed

    def _maybe_progress(self, epoch: int) -> None:
        now = time.time()
        if now - self._last_progress < PROGRESS_INTERVAL_S and self.step < self.steps_per_epoch:
            return
        self._last_progress = now
        s = self._read_sums()
        train_time = max(1e-9, (now - self.session_start) - self.eval_time_s)
        self.bus.emit(
            ev.PROGRESS,
            epoch=epoch,
            step=self.step,
            steps=self.steps_per_epoch,
            loss=s.loss / max(s.graphs, 1),
            acc=s.correct / max(s.graphs, 1),
            graphs_per_s=self.session_steps * self.config.batch_size / train_time,
            elapsed_s=self._elapsed(),
            eta_s=self._eta(),
        )
        self._heartbeat()

    # -- epoch boundary -----------------------------------------------------
    def _end_epoch(self, epoch: int) -> None:
        cfg = self.config
        s = self.sums
        gpu_peak = None
        if self.device.type == "cuda":
            gpu_peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.epoch, self.step = epoch, 0
        self.bus.emit(
            ev.EPOCH_END,
            epoch=epoch,
            loss=s.loss / s.graphs,
            task_loss=s.task_loss / s.graphs,
            cycle_loss=s.cycle_loss / s.graphs,
            acc=s.correct / s.graphs,
            grad_norm=s.grad_norm / s.steps,
            lr=self.optimizer.param_groups[0]["lr"],
            epoch_time_s=s.time_s,
            graphs_per_s=s.graphs / max(s.time_s, 1e-9),
            gpu_peak_mem_mb=gpu_peak,
            elapsed_s=self._elapsed(),
            eta_s=self._eta(),
        )
        self.sums = EpochSums()
        improved = False
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            t0 = time.time()
            val = loss_metrics(self.model, self.val_set, self.device, cfg.cycle_weight)
            self.eval_time_s += time.time() - t0
            self.evals_done += 1
            improved = val["loss"] < self.best_val_loss
            if improved:
                self.best_val_loss, self.best_val_acc, self.best_epoch = val["loss"], val["acc"], epoch
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            patience_left = None
            if cfg.patience:
                patience_left = max(0, cfg.patience - (epoch - (self.best_epoch or epoch)))
            self.bus.emit(
                ev.EVAL,
                epoch=epoch,
                split="val",
                **val,
                is_best=improved,
                best_val_loss=self.best_val_loss,
                best_val_acc=self.best_val_acc,
                best_epoch=self.best_epoch,
                patience_left=patience_left,
            )
            if improved:
                self._save(BEST_FILE, "best", metrics={"val_" + k: v for k, v in val.items()})
        if epoch % cfg.save_every == 0:
            self._save(checkpoint_file_name(epoch), "periodic", metrics={"best_val_loss": self.best_val_loss})
        self._write_history()
        self._heartbeat()

    # -- checkpoints --------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stop": {
                "best_val_loss": self.best_val_loss,
                "best_val_acc": self.best_val_acc,
                "best_epoch": self.best_epoch,
                "patience": self.config.patience,
            },
            "rng": rng,
            "partial": asdict(self.sums),
            "history": self.history.to_dict(),
            "elapsed_s": self._elapsed(),
            "vocabulary": self.dataset.spec.to_dict(),
            "threads": torch.get_num_threads(),  # what a resume compares its own count with
        }
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        return state

    def _save(self, file: str, kind: str, metrics: dict[str, Any] | None = None) -> None:
        path = self.run_dir.path / file
        try:
            size = save_checkpoint(path, self._state())
        except OSError as exc:
            raise _disk_error(exc, f"could not write checkpoint {file}", self.last_checkpoint) from None
        if kind != "best":
            self.last_checkpoint = file
        self.bus.emit(ev.CHECKPOINT, epoch=self.epoch, step=self.step, file=file, kind=kind, size=size, metrics=metrics or {})
        if kind == "periodic" and self.config.keep_last:
            self._apply_retention()

    def _apply_retention(self) -> None:
        """KEEP_LAST: drop older periodic (and superseded interrupt) checkpoints, never the
        best model nor the checkpoint this attempt resumed from."""
        from nsm.runs.retention import REASON, checkpoints_to_remove

        protect = [self.resume_from.name] if self.resume_from is not None else []
        for name in checkpoints_to_remove(self.run_dir.path, self.config.keep_last, protect):
            try:
                os.unlink(self.run_dir.path / name)
            except FileNotFoundError:
                continue
            except OSError as exc:  # a file we cannot remove costs disk space, never the run
                self.bus.emit(ev.LOG, level="warning", message=f"KEEP_LAST could not remove {name}: {exc}")
                continue
            _remove_file(self.run_dir.evaluation_path(name))  # its saved evaluation goes with it
            self.bus.emit(
                ev.CHECKPOINT_REMOVED, file=name, reason=REASON, keep_last=self.config.keep_last, after_epoch=self.epoch
            )

    def _add_run_sinks(self) -> None:
        """TensorBoard / W&B, as the config asks; a sink that fails says so once and goes quiet."""
        from nsm.training.sinks import run_sinks

        def report(message: str) -> None:
            assert self.bus is not None
            self.bus.defer(ev.LOG, level="warning", message=message)

        self._run_sinks = run_sinks(self.run_dir.path, self.run_dir.name, self.config, report)
        for sink in self._run_sinks:
            self.bus.add_sink(sink)

    def _write_history(self) -> None:
        try:
            self.run_dir.write_history(self.history.to_dict())
        except OSError as exc:
            raise _disk_error(exc, "could not write training_history.json", self.last_checkpoint) from None

    # -- endings ------------------------------------------------------------
    def _interrupt(self) -> Outcome:
        file = checkpoint_file_name(self.epoch, self.step)
        self._save(file, "interrupt", metrics={"best_val_loss": self.best_val_loss})
        self._write_history()
        self._flush_logs()
        self.bus.emit(
            ev.INTERRUPTED,
            epoch=self.epoch,
            step=self.step,
            checkpoint=file,
            reason=self.stop_reason or "stop requested",
        )
        return "interrupted"

    def _finish(self, stopped_early: bool) -> Outcome:
        cfg = self.config
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        subtypes = self.dataset.spec.subtypes
        test = evaluate(self.model, self.dataset.test, device=self.device, cycle_weight=cfg.cycle_weight, subtypes=subtypes)
        # The same model on the out-of-distribution test splits (larger graphs, longer plans).
        t_ood = time.time()
        ood = {
            name: evaluate(self.model, gs, device=self.device, cycle_weight=cfg.cycle_weight, subtypes=subtypes)
            for name, gs in self.dataset.ood.items()
        }
        ood_time_s = time.time() - t_ood
        ood_stats = self.dataset.stats.get("ood") if isinstance(self.dataset.stats, dict) else None
        skipped = ood_stats.get("skipped") if isinstance(ood_stats, dict) else None
        hist = self.history.to_dict()
        train_times = [t for t in hist["train"]["epoch_time_s"] if t]
        graph_rates = [r for r in hist["train"]["graphs_per_s"] if r]
        results = {
            "run": self.run_dir.name,
            "domain": cfg.domain,
            "reason": "early_stopped" if stopped_early else "completed",
            "epochs_done": self.epoch,
            "best_epoch": self.best_epoch,
            "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
            "best_val_acc": self.best_val_acc,
            "checkpoint": BEST_FILE if self.best_state is not None else None,
            "test": test,
            "ood": ood,
            **({"ood_skipped": skipped} if skipped else {}),
            "baselines": self.dataset.baselines,
            "dataset": {s: len(self.dataset.split(s)) for s in self.dataset.split_names},
            "params": count_parameters(self.model),
            "timings": {
                "total_s": self._elapsed(),
                "train_s": sum(train_times),
                "s_per_epoch": sum(train_times) / len(train_times) if train_times else None,
                "graphs_per_s": sum(graph_rates) / len(graph_rates) if graph_rates else None,
                "data_s": self.data_time_s,
                "ood_eval_s": round(ood_time_s, 3),
            },
            "device": str(self.device),
            "config": cfg.to_dict(),
        }
        try:
            self.run_dir.write_results(results)
            if self.best_state is not None:
                from nsm.atomic import atomic_write_json

                atomic_write_json(
                    self.run_dir.evaluation_path(BEST_FILE),
                    {
                        "checkpoint": BEST_FILE,
                        "epoch": self.best_epoch,
                        "split": "test",
                        **test,
                        "ood": ood,
                        "baselines": self.dataset.baselines,
                    },
                )
        except OSError as exc:
            raise _disk_error(exc, "could not write final_results.json", self.last_checkpoint) from None
        self._flush_logs()
        self.bus.emit(
            ev.FINISHED,
            reason=results["reason"],
            epochs_done=self.epoch,
            best_epoch=self.best_epoch,
            best_val_loss=results["best_val_loss"],
            test={"acc": test["acc"], "loss": test["loss"]},
            ood={name: {"acc": r["acc"], "loss": r["loss"]} for name, r in ood.items()},
            baselines={k: v["test_acc"] for k, v in self.dataset.baselines.items() if isinstance(v, dict) and "test_acc" in v},
            total_time_s=self._elapsed(),
        )
        return "finished"

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, TrainingError):
            message, hint, kind, extra = str(exc), exc.hint, exc.error_type, exc.extra
        elif isinstance(exc, CheckpointError):
            message, hint, kind, extra = str(exc), "pick another checkpoint", "checkpoint", {}
        elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            err = _disk_error(exc, "could not write the run's files (its event log)", getattr(self, "last_checkpoint", None))
            message, hint, kind, extra = str(err), err.hint, err.error_type, {}
        elif _is_oom(exc):
            bs = self.config.batch_size
            message = f"CUDA out of memory at epoch {self.epoch + 1}, step {self.step + 1} with BATCH_SIZE={bs}"
            hint = f"restart with a smaller BATCH_SIZE, e.g. {max(1, bs // 2)}"
            kind, extra = "oom", {"suggested_config": {"batch_size": max(1, bs // 2)}}
        else:
            message = f"{type(exc).__name__}: {_first_line(str(exc))}"
            hint, kind, extra = None, "exception", {}
        log.error("run %s failed: %s", self.run_dir.name, message)
        if self.bus is None:
            return
        payload = {
            "error": message,
            "error_type": kind,
            "hint": hint,
            "epoch": getattr(self, "epoch", 0),
            "step": getattr(self, "step", 0),
            "checkpoint": getattr(self, "last_checkpoint", None),
            **extra,
        }
        if kind == "exception":
            payload["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
        self._record_failure(payload)

    def _record_failure(self, payload: dict[str, Any]) -> None:
        """Write the `failed` event; on a full disk free the reserve and try again, and
        failing that leave failed.json (which Run.status reads), so a run never ends
        without a record that it failed."""
        assert self.bus is not None
        self._flush_logs()
        try:
            self.bus.emit(ev.FAILED, **payload)
            return
        except OSError as exc:
            log.error("could not write the failed event to the log: %s", exc)
        _remove_file(self.run_dir.path / RESERVE_FILE)  # the space kept for exactly this
        try:
            self.bus.emit(ev.FAILED, **payload)
            return
        except OSError as exc:
            log.error("could not write the failed event even after freeing the reserve: %s", exc)
        record = {k: payload.get(k) for k in ("error", "error_type", "hint", "epoch", "step", "checkpoint")}
        record.update(t=time.time(), after_seq=self.bus.next_seq - 1, pid=os.getpid())
        try:
            from nsm.atomic import atomic_write_json

            atomic_write_json(self.run_dir.path / FAILURE_FILE, record)
        except OSError as exc:
            log.error("could not write %s either: %s", FAILURE_FILE, exc)
        self.bus.emit_best_effort(ev.FAILED, **payload)  # the sinks (a viewer) still hear it

    # -- GPU ----------------------------------------------------------------
    def _start_gpu_telemetry(self) -> Any:
        from nsm.telemetry import GpuSampler, take_sample

        if self.device.type != "cuda":
            self.bus.emit(ev.GPU, sample=take_sample())
            return None
        def emit(sample: dict[str, Any]) -> None:
            if self.bus is not None and self.outcome is None:
                self.bus.emit(ev.GPU, sample=sample)

        # NVML numbers GPUs differently from torch under CUDA_VISIBLE_DEVICES: sample every
        # device and let readers match the training one by the UUID in torch_memory.
        return GpuSampler(
            interval_s=self._gpu_interval_s, callback=emit, pid=os.getpid(), torch_device=self.device, include_torch=True
        ).start()


RESERVE_BYTES = 64 * 1024
# A temp file of an atomic write (nsm.atomic: `.{name}.XXXXXXXX.tmp`) this old was left by a
# killed writer; a younger one may be a write in progress (a stop request being sent).
ORPHAN_TEMP_AGE_S = 5.0


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _make_reserve(path: Path) -> None:
    """Real blocks (not a sparse file) that a full disk gives back for the failure record."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        log.warning("could not create %s: %s", path, exc)
        return
    try:
        os.write(fd, b"\0" * RESERVE_BYTES)
    except OSError as exc:
        log.warning("could not fill %s: %s", path, exc)
    finally:
        os.close(fd)


def _clear_stale_stop_request(run: Run) -> None:
    """Drop a stop request older than this process (left by an earlier attempt); keep one sent
    since it started (a `stop` right after a detached launch, before the engine was built)."""
    try:
        requested = run.stop_path.stat().st_mtime
    except OSError:
        return
    from nsm.runs.process import process_start_time

    started = process_start_time(os.getpid())
    if started is None or requested < started:
        run.clear_stop_request()


def _remove_orphan_temp_files(folder: Path) -> None:
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat(follow_symlinks=False).st_mtime < ORPHAN_TEMP_AGE_S:
                continue
            os.unlink(entry.path)
            log.info("removed %s, left by an interrupted write", name)
        except OSError:
            continue


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:500] if stripped else ""


def _is_oom(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "CUDA out of memory" in str(exc)


def _disk_error(exc: OSError, what: str, last_good: str | None) -> TrainingError:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    reason = "the disk is full (no space left on device)" if full else (exc.strerror or str(exc))
    where = f" under {Path(exc.filename).parent}" if exc.filename else ""
    keep = f"; the last good checkpoint {last_good} is intact" if last_good else ""
    hint = ("free disk space" if full else "make the run directory writable") + where + (
        f", then resume from {last_good}" if last_good else ", then start the run again"
    )
    return TrainingError(f"{what}: {reason}{keep}", hint=hint, error_type="disk")
