"""Folders and files on disk: one spelling of a path, and writes a reader never sees half of."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Callable

HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"  # in temporary names: folders may be shared
STALE_AFTER = 24 * 3600  # seconds: another machine's temporary this old is abandoned


class WriteError(Exception):
    """A file or folder could not be written; the message is the reason ("No space left on device")."""


def absolute(path: str | os.PathLike) -> Path:
    """One spelling of a path wherever it is stored or compared: absolute, `~` expanded, links
    resolved (so ./runs, runs and /home/me/app/runs are the same folder)."""
    return Path(path).expanduser().resolve()


def write_atomically(target: Path, fill: Callable[[Path], None], folder: bool = True) -> Path:
    """Create `target` (a folder, or a file when `folder` is False) by filling a temporary sibling
    and renaming it into place. Any failure removes the temporary; a full disk (OSError from Python's
    own writes, RuntimeError from torch.save) raises WriteError, anything else goes on as it was."""
    target = Path(target)
    tmp = target.parent / f".tmp-{target.name}-{HOST}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            tmp.mkdir()
        fill(tmp)
        if folder and target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, (OSError, RuntimeError)):
            raise WriteError(_reason(exc)) from None
        raise
    return target


def remove_temporaries(directory: Path, pid: int | None = None) -> list[str]:
    """Remove the half-written `.tmp-*` entries in `directory` that no live process will finish:
    those of process `pid` of this machine (it died), or, with no pid, of every dead process of
    this machine and any older than STALE_AFTER (another machine's, or of an older name format).
    Returns their names."""
    pattern = re.compile(rf"-{HOST}-(\d+)-\d+$")
    removed = []
    if not Path(directory).is_dir():
        return removed
    for path in Path(directory).iterdir():
        if not path.name.startswith(".tmp-"):
            continue
        mine = pattern.search(path.name)
        if pid is not None:
            stale = mine is not None and int(mine.group(1)) == pid
        elif mine is not None:
            stale = not _alive(int(mine.group(1)))
        else:
            try:
                stale = time.time() - path.lstat().st_mtime > STALE_AFTER
            except OSError:
                stale = False
        if stale:
            _remove(path)
            removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def save_tensors(obj, path: Path) -> None:
    """torch.save through memory, then one plain write: a full disk then reads "No space left on
    device" (an OSError) instead of torch's "[enforce fail at inline_container.cc…]"."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    Path(path).write_bytes(buffer.getbuffer())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink(missing_ok=True)
        except OSError:  # its parent is not a folder: nothing was written
            pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
