"""Which workers a server starts: `CAE_DEVICES` names one worker per device (cae/jobs.py).

Unset, the server starts one worker as it always has. `auto` starts one per visible GPU (one CPU
worker where there is none); a list such as `cuda:0,cuda:1` or `cpu,cpu` names them. Each worker
sees only its own device (CUDA_VISIBLE_DEVICES), so inside it `cuda` is that device. Several CPU
workers share the cores, so they need a thread budget that fits: `CAE_WORKER_THREADS`, with
workers × threads at most the core count.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

DEVICES_ENV = "CAE_DEVICES"
THREADS_ENV = "CAE_WORKER_THREADS"  # torch threads of the training worker; default: all cores but one


class DevicesError(ValueError):
    """CAE_DEVICES asks for workers this machine cannot give."""


def worker_devices(spec: str | None = None, gpus: int | None = None, cores: int | None = None) -> list[str | None]:
    """The device of each worker: [None] for today's single, unpinned worker (CAE_DEVICES unset),
    else "cpu" or "cuda:N" per worker. Raises DevicesError with a sentence for a list this
    machine cannot serve."""
    spec = os.environ.get(DEVICES_ENV, "") if spec is None else spec
    spec = spec.strip().lower()
    if not spec:
        return [None]
    gpus = visible_gpus() if gpus is None else gpus
    if spec == "auto":
        return [f"cuda:{i}" for i in range(gpus)] or ["cpu"]
    devices = [_one_device(name.strip(), gpus) for name in spec.split(",")]
    _check_cpu_share(devices.count("cpu"), cores or os.cpu_count() or 1)
    return devices


def _one_device(name: str, gpus: int) -> str:
    if name == "cpu":
        return "cpu"
    if name == "cuda":
        name = "cuda:0"
    index = name.removeprefix("cuda:")
    if not (name.startswith("cuda:") and index.isdigit()):
        raise DevicesError(f"{DEVICES_ENV} names {name!r}; use auto, or a list of cpu and cuda:N, e.g. cuda:0,cuda:1.")
    if int(index) >= gpus:
        seen = f"{gpus} GPU{'s' if gpus != 1 else ''}" + (f" (cuda:0 to cuda:{gpus - 1})" if gpus > 1 else "")
        raise DevicesError(f"{DEVICES_ENV} names {name}, but this machine sees {seen}.")
    return f"cuda:{int(index)}"


def _check_cpu_share(workers: int, cores: int) -> None:
    """More than one CPU worker only with a thread budget that the cores hold."""
    if workers <= 1:
        return
    threads = os.environ.get(THREADS_ENV, "")
    if not threads.isdigit() or int(threads) < 1:
        raise DevicesError(
            f"{DEVICES_ENV} asks for {workers} CPU workers: set {THREADS_ENV} too, so that {workers} × threads "
            f"is at most this machine's {cores} cores (e.g. {THREADS_ENV}={max(1, cores // workers)})."
        )
    if workers * int(threads) > cores:
        raise DevicesError(
            f"{workers} CPU workers × {THREADS_ENV}={threads} threads need {workers * int(threads)} cores; "
            f"this machine has {cores}. Lower {THREADS_ENV} to {max(1, cores // workers)} or start fewer workers."
        )


def cpu_share_warning(devices: list[str | None], cores: int | None = None) -> str | None:
    """A sentence for the page when CPU workers leave the web server no core of its own."""
    workers = devices.count("cpu")
    cores = cores or os.cpu_count() or 1
    threads = int(os.environ.get(THREADS_ENV) or 0) or max(1, cores - 1)
    if workers <= 1 or workers * threads < cores:
        return None
    return (
        f"{workers} CPU workers × {threads} thread{'s' if threads != 1 else ''} use all {cores} cores, so pages "
        "answer more slowly while they train (the web server has no core of its own)."
    )


def visible_gpus() -> int:
    """CUDA devices this process sees, without starting CUDA here (none when torch has no CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def kind_of(device: str | None) -> str | None:
    """ "cuda" or "cpu" for a pinned worker; None for the unpinned single worker (it takes anything)."""
    return None if device is None else device.split(":")[0]


def pinning(device: str | None) -> dict[str, str]:
    """The environment that pins a worker to its device: the GPU it may see, or none at all."""
    if device is None:
        return {}
    if device == "cpu":
        return {"CUDA_VISIBLE_DEVICES": ""}
    index = int(device.split(":")[1])
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return {"CUDA_VISIBLE_DEVICES": visible[index] if index < len(visible) else str(index)}


def worker_threads() -> int:
    """All cores but one, which the web server keeps: a training team that shares a core with a
    busy page slows down 10 to 60 times, one that does not, 5% (bench/NOTES.md, bench/threads.py)."""
    return int(os.environ.get(THREADS_ENV) or max(1, (os.cpu_count() or 1) - 1))


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


# --- device and precision -------------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }
    if name == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))
    if name not in available:
        raise DeviceError(f"Unknown device {name!r}; use auto, cpu, cuda or mps.")
    if not available[name]:
        raise DeviceError(f"Device {name!r} was asked for but is not available here; use --device auto (or cpu).")
    return torch.device(name)


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: torch.device) -> bool:
    """bf16 done by the hardware itself: CUDA compute capability 8.0 and up, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"}) and bf16_supported(device)
    return False


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast runs at all (natively or emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is bf16 autocast where the hardware does bf16 natively (measured faster, same
    quality: bench/NOTES.md), else fp32. An explicit bf16 without any support is an error."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not bf16_supported(device):
        raise DeviceError(
            f"bf16 was asked for but {device.type} here has no bf16 support; use --precision fp32 or auto."
        )
    return precision


def autocast(device: torch.device, precision: str):
    """bf16 autocast for the forward pass; weights, losses and optimiser state stay fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"CPU, {threads} thread{'s' if threads != 1 else ''}"
    return device.type.upper()
