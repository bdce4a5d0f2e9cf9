"""The run store and the event protocol, readable without torch.

A run is a directory `<root>/<domain>/<name>/` holding config.json, the
append-only events.jsonl and the files derived from it (docs/ARCHITECTURE.md).
"""

from nsm.runs.checkpoints import (
    BEST_FILE,
    CheckpointInfo,
    checkpoint_file_name,
    parse_checkpoint_name,
)
from nsm.runs.errors import RunExists, RunIsRunning, RunNotFound, RunStoreError
from nsm.runs.events import (
    CHECKPOINT,
    EPOCH_END,
    EVAL,
    EVENT_TYPES,
    EVENT_VERSION,
    FAILED,
    FINISHED,
    GPU,
    INTERRUPTED,
    LOG,
    PROGRESS,
    RESUMED,
    RUN_STARTED,
    TERMINAL_TYPES,
    EventFollower,
    EventLogWriter,
    make_event,
    read_events,
)
from nsm.runs.history import HistoryBuilder, RunState, StateBuilder, history_from_events, latest_state
from nsm.runs.names import RunNameError, generate_run_name, validate_run_name
from nsm.runs.process import HEARTBEAT_FRESH_S, pid_alive
from nsm.runs.store import (
    CREATED,
    ENV_RUNS_DIR,
    RUNNING,
    STALE,
    STATUSES,
    Run,
    RunStore,
    RunSummary,
    default_runs_dir,
)

__all__ = [
    "BEST_FILE",
    "CHECKPOINT",
    "CREATED",
    "ENV_RUNS_DIR",
    "EPOCH_END",
    "EVAL",
    "EVENT_TYPES",
    "EVENT_VERSION",
    "FAILED",
    "FINISHED",
    "GPU",
    "HEARTBEAT_FRESH_S",
    "INTERRUPTED",
    "LOG",
    "PROGRESS",
    "RESUMED",
    "RUNNING",
    "RUN_STARTED",
    "STALE",
    "STATUSES",
    "TERMINAL_TYPES",
    "CheckpointInfo",
    "EventFollower",
    "EventLogWriter",
    "HistoryBuilder",
    "Run",
    "RunExists",
    "RunIsRunning",
    "RunNameError",
    "RunNotFound",
    "RunState",
    "RunStore",
    "RunStoreError",
    "RunSummary",
    "StateBuilder",
    "checkpoint_file_name",
    "default_runs_dir",
    "generate_run_name",
    "history_from_events",
    "latest_state",
    "make_event",
    "parse_checkpoint_name",
    "pid_alive",
    "read_events",
    "validate_run_name",
]
