"""Names, limits and prices of the Modal backend, in one place.

Everything here is plain data (no `modal` import), so the CLI, the TUI and the
tests read it without touching the network. Timeouts that a user may need to
change on a slow link come from environment variables.
"""

from __future__ import annotations

import hashlib
import os
import re

APP_NAME = "nsm-tui"
VOLUME_NAME = "nsm-checkpoints"
MOUNT = "/checkpoints"
QUEUE_NAME = "nsm-tui-events"  # one partition per run
DICT_NAME = "nsm-tui-control"  # stop flags, seq high-water marks, stream leases
TRAIN_FUNCTION = "train"  # spawned: the engine, on a GPU, with retries
STREAM_FUNCTION = "stream"  # generator for attached runs: relays the run's events

PYTHON_VERSION = "3.11"
# torch from PyTorch's CUDA 12.8 index: its wheels carry kernels up to sm_100 (B200); PyPI's
# default 2.7.1 wheel is the CUDA 12.6 build, which has none for Blackwell. Inside the project's
# ranges (torch>=2.4,<2.14, torch-geometric>=2.5,<2.9). Every image package is pinned.
TORCH_VERSION = "2.7.1"
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cu128"
TORCH_PACKAGES = (f"torch=={TORCH_VERSION}+cu128",)
PYG_VERSION = "2.6.1"
IMAGE_PACKAGES = (
    f"torch-geometric=={PYG_VERSION}",
    "numpy==2.4.6",
    "nvidia-ml-py==13.615.71",
)
LOCAL_PACKAGES = ("nsm", "remote")  # added last: editing them rebuilds only that layer
DATASET_CACHE = f"{MOUNT}/.cache/datasets"  # generated datasets are kept on the volume

DEFAULT_GPU = "A100-40GB"
MAX_RETRIES = 3
RETRY_INITIAL_DELAY_S = 10.0
PARTITION_TTL_S = 24 * 3600  # Modal clears a queue partition this long after its last put
# Modal kills a pre-empted container ~30 s after its SIGINT (modal.exception.simulate_preemption
# models the same); past this a pre-empted attempt that is still alive ends itself with an error.
PREEMPTION_GRACE_S = 90.0


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def attempt_timeout_s() -> int:
    """Wall-clock limit of one attempt (Modal's `timeout`, at most 24 h); a retry gets a fresh one."""
    return int(min(24 * 3600, _env_float("NSM_MODAL_TIMEOUT_S", 6 * 3600)))


def control_timeout_s() -> float:
    """Deadline of one control call (spawn, stop flag, volume listing...). A bad
    endpoint makes the Modal client retry for minutes; we give up long before."""
    return _env_float("NSM_MODAL_CONTROL_TIMEOUT_S", 20.0)


def app_start_timeout_s() -> float:
    """Deadline for starting an ephemeral app (includes the first image build)."""
    return _env_float("NSM_MODAL_APP_START_TIMEOUT_S", 20 * 60.0)


def reconnect_s() -> float:
    """How long a follower keeps reconnecting when Modal does not answer (network
    down, service trouble) before it says the run's state is unknown and ends."""
    return _env_float("NSM_MODAL_RECONNECT_S", 15 * 60.0)


FORWARD_INTERVAL_S = 0.5  # the container sends queued events at most this often
STOP_POLL_S = 2.0  # the container reads the stop flag this often
LIVENESS_PROBE_S = 10.0  # a follower asks whether the call still runs this often
LEASE_TTL_S = 30.0  # a stream relay whose follower stopped renewing gives up after this
LEASE_RENEW_S = 8.0

# On-demand list prices per GPU-hour (USD), from https://modal.com/pricing (per-second
# billing; CPU and memory are billed on top and are small next to the GPU).
PRICES_AS_OF = "2026-05"
PRICING_URL = "https://modal.com/pricing"
GPU_PRICES_PER_HOUR = {
    "T4": 0.59,
    "L4": 0.80,
    "A10G": 1.10,
    "L40S": 1.95,
    "A100-40GB": 2.10,
    "A100-80GB": 2.50,
    "H100": 3.95,
    "H200": 4.54,
    "B200": 6.25,
}
_ALIASES = {"A100": "A100-40GB", "A10": "A10G"}
_GPU_RE = re.compile(r"^([A-Za-z0-9-]+?)(?::([0-9]+))?$")


class GpuChoiceError(ValueError):
    pass


def gpu_choice(raw: str | None) -> str:
    """A Modal GPU string (`TYPE` or `TYPE:N`) from what the user typed; GpuChoiceError names what is allowed."""
    if raw is None or not str(raw).strip():
        return DEFAULT_GPU
    text = str(raw).strip()
    m = _GPU_RE.match(text)
    kind = _ALIASES.get(m.group(1).upper(), m.group(1).upper()) if m else None
    if m is None or kind not in GPU_PRICES_PER_HOUR:
        raise GpuChoiceError(f"GPU must be one of {', '.join(GPU_PRICES_PER_HOUR)}; got {raw!r}")
    if m.group(2) and int(m.group(2)) != 1:
        # Modal would bill every GPU asked for, and the engine trains on one.
        raise GpuChoiceError(f"a run trains on one GPU: use {kind} (not {text}); got {raw!r}")
    return kind


def price_per_hour(gpu: str) -> float | None:
    kind, _, count = gpu.partition(":")
    price = GPU_PRICES_PER_HOUR.get(_ALIASES.get(kind.upper(), kind.upper()))
    return None if price is None else price * (int(count) if count else 1)


def volume_run_path(domain: str, name: str) -> str:
    """A run's folder relative to the volume's root (the same layout as a local store)."""
    return f"{domain}/{name}"


def mounted_run_path(domain: str, name: str) -> str:
    return f"{MOUNT}/{volume_run_path(domain, name)}"


def partition_key(domain: str, name: str, launch_id: str | None = None) -> str:
    """The queue partition (and control-dict key) of one launch of a run: a
    new launch (a resume, or a new run reusing a name) never reads what an
    earlier one left behind. Modal allows at most 64 bytes."""
    key = f"{domain}/{name}" + (f"@{launch_id[:12]}" if launch_id else "")
    if len(key.encode()) <= 64:
        return key
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return f"{key[:47]}~{digest}"


def stop_key(partition: str) -> str:
    return f"stop:{partition}"


def high_water_key(partition: str) -> str:
    return f"hw:{partition}"


def lease_key(partition: str) -> str:
    return f"lease:{partition}"
