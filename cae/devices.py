"""Which workers a server starts: `CAE_DEVICES` names one worker per device (cae/jobs.py).

Unset, the server starts one worker as it always has. `auto` starts one per visible GPU (one CPU
worker where there is none); a list such as `cuda:0,cuda:1` or `cpu,cpu` names them. Each worker
sees only its own device (CUDA_VISIBLE_DEVICES), so inside it `cuda` is that device. Several CPU
workers share the cores, so they need a thread budget that fits: `CAE_WORKER_THREADS`, with
workers × threads at most the core count.
"""

from __future__ import annotations

import os

DEVICES_ENV = "CAE_DEVICES"
THREADS_ENV = "CAE_WORKER_THREADS"  # the same variable cae/train.py's worker_threads reads


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
