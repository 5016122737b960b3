"""Shipping a run: copy it into pretrained/ (or any folder) with fp16 weights, storing an
autoencoder only once. Used by bench/ship_run.py and its tests; not part of the app."""

from __future__ import annotations

import shutil
from pathlib import Path

from cae.files import WriteError, absolute, save_tensors, write_atomically
from cae.runs import (
    AUTOENCODER,
    CLASSIFIER,
    RunError,
    metrics_or_none,
    read_metrics,
    read_tensors,
    run_folders,
    safe_run_path,
)


def export_run(source: Path, directory: Path, half: bool = True) -> Path:
    """Copy a run into another folder (e.g. pretrained/), storing weights in fp16 when `half`; when
    a run there already holds the same autoencoder, its weights are not stored twice (`load_run`
    finds them there)."""
    source, target = Path(source), safe_run_path(absolute(directory), Path(source).name)
    key = read_metrics(source).get("autoencoder_key")
    shared = key and any(
        folder != target and (folder / AUTOENCODER).exists() and metrics_or_none(folder).get("autoencoder_key") == key
        for folder in run_folders(absolute(directory))
    )

    def fill(tmp: Path) -> None:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if shared:
            (tmp / AUTOENCODER).unlink()
        for name in (AUTOENCODER, CLASSIFIER) if half else ():
            if (tmp / name).exists():
                state = read_tensors(tmp / name)
                save_tensors({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, tmp / name)

    try:
        return write_atomically(target, fill)
    except WriteError as exc:
        raise RunError(f"Cannot copy the run to {directory} ({exc}).") from None
