"""The execution layer: where a run trains, who may train it, and how it is followed.

- `backend`: Backend (start, resume, stop, events) per place; `backend_for(run)` chooses.
- `rules`: what may be resumed from which checkpoint, what may be stopped (one wording).
- `lock`: one trainer per run (an flock naming its holder).
- `source`: the EventSource every viewer reads; `follow` for headless viewers.
- `render`: events as lines of text, the same in every viewer.
- `launcher`: the one recipe for a detached background process.
"""

from nsm.execution.backend import (
    BACKEND_LABELS,
    IN_PROCESS,
    MODAL,
    PROCESS,
    Backend,
    BackendUnavailable,
    Execution,
    InProcessBackend,
    LocalProcessBackend,
    backend_for,
    backend_name,
    make_backend,
    register_backend,
)
from nsm.runs.lock import Holder, RunLock, RunLocked
from nsm.execution.rules import NotResumable, NotStoppable, ResumePlan, StopTarget, plan_resume, plan_stop, resumable_now
from nsm.execution.source import EventSource, follow

__all__ = [
    "BACKEND_LABELS",
    "IN_PROCESS",
    "MODAL",
    "PROCESS",
    "Backend",
    "BackendUnavailable",
    "EventSource",
    "Execution",
    "Holder",
    "InProcessBackend",
    "LocalProcessBackend",
    "NotResumable",
    "NotStoppable",
    "ResumePlan",
    "RunLock",
    "RunLocked",
    "StopTarget",
    "backend_for",
    "backend_name",
    "follow",
    "make_backend",
    "plan_resume",
    "plan_stop",
    "register_backend",
    "resumable_now",
]
