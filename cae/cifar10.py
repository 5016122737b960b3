"""CIFAR-10's own files: the download (checked against its MD5), the archive unpacked to its batch
files only, and a batch read by an unpickler that admits arrays, lists and strings only.
cae/data.py turns them into a Dataset."""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np

from cae.files import write_atomically


class ChecksumError(ValueError):
    """A download whose MD5 is not the archive's."""


URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles of numpy arrays, lists and strings; anything else in one is
    refused, so a planted file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }  # how protocol-2 pickles made by Python 3 spell bytes

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One batch file (a pickle of arrays, lists and strings only), its keys as str."""
    with open(path, "rb") as f:
        raw = _ArraysOnly(f, encoding="latin1").load()
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _fetch(url: str, target: Path, on_progress=None, chunk: int = 1 << 20) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as out:
        total, done = int(response.headers.get("Content-Length") or 0), 0
        while block := response.read(chunk):
            out.write(block)
            done += len(block)
            if on_progress:
                on_progress(done, total)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, target: Path) -> None:
    """The batch files of the archive's cifar-10-batches-py/ into `target` (nothing else, no links)."""
    wanted = {"batches.meta", *BATCHES["train"], *BATCHES["test"]}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in wanted and Path(member.name).parent.name == FOLDER:
                with tar.extractfile(member) as src, open(target / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    missing = wanted - {p.name for p in target.iterdir()}
    if missing:
        raise tarfile.TarError(f"the archive lacks {', '.join(sorted(missing))}")


def download(root: Path, url: str, md5: str, on_progress=None) -> Path:
    """The archive at `url` fetched into `root`, checked against `md5` and unpacked to root/FOLDER;
    OSError, ChecksumError or tarfile.TarError when it cannot be."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / ".cifar-10-python.tar.gz.part"
    _fetch(url, archive, on_progress)
    if _md5(archive) != md5:
        archive.unlink()
        raise ChecksumError(url)
    write_atomically(root / FOLDER, lambda tmp: _unpack(archive, tmp))
    archive.unlink()
    return root / FOLDER
