"""Shared fixtures: an isolated cache and runs folder, and small real image folders.

Tests that need real images take a slice of the shared CIFAR-10 copy ($CAE_TEST_DATA, else
../shared/datasets/cifar10-jpeg beside the repository); without it they build their own tiny
image folder. Nothing is ever written into the shared folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def shared_cifar() -> Path | None:
    """The full CIFAR-10 image folder, when this machine has one."""
    candidate = Path(os.environ.get("CAE_TEST_DATA") or REPO.parent / "shared" / "datasets" / "cifar10-jpeg")
    return candidate if (candidate / "train").is_dir() and (candidate / "test").is_dir() else None


def synthetic_image(label: int, index: int, rng: np.random.Generator) -> Image.Image:
    """A 32x32 picture whose colour and stripe direction depend on the class: learnable, not trivial."""
    base = np.array([(label * 25) % 256, (label * 70 + 40) % 256, (255 - label * 20) % 256], float)
    img = np.tile(base, (32, 32, 1)) + rng.normal(0, 25, (32, 32, 3))
    stripes = (np.arange(32) // (2 + label % 4)) % 2 == 0
    if label % 2:
        img[stripes, :, :] *= 0.5
    else:
        img[:, stripes, :] *= 0.5
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_image_folder(root: Path, train_per_class: int, test_per_class: int, classes=CLASSES, seed: int = 0) -> Path:
    """ROOT/train/<class>/*.png and ROOT/test/<class>/*.png: a slice of the shared CIFAR-10 copy
    when there is one, else synthetic images."""
    source = shared_cifar()
    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            if source is not None and (source / split / name).is_dir():
                for path in sorted((source / split / name).iterdir())[:n]:
                    shutil.copyfile(path, folder / path.name)
            else:
                for i in range(n):
                    synthetic_image(label, i, rng).save(folder / f"{i:04d}.png")
    return root


def shipped_fingerprint() -> dict[str, bytes]:
    """Each file under pretrained/ (locks aside) with its SHA-256."""
    import hashlib

    folder = REPO / "pretrained"
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).digest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".lock"
    }


@pytest.fixture(autouse=True, scope="session")
def shipped_runs_stay_as_shipped():
    """No test may change what the repository ships: a test once wrote its fake comparison through
    a link into pretrained/objectives.json, and the fake numbers were committed."""
    before = shipped_fingerprint()
    yield
    after = shipped_fingerprint()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"the tests changed the shipped files {changed}: restore them with git checkout"


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path_factory, monkeypatch):
    """Every test gets its own runs folder and a session-wide cache; no test touches ./runs.
    Job managers (and their worker processes) a test started are stopped after it."""
    monkeypatch.setenv("CAE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("CAE_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.delenv("CAE_DATA", raising=False)
    monkeypatch.delenv("CAE_WORKER_HOLD", raising=False)
    threads = torch.get_num_threads()
    yield
    from cae.jobs import shutdown_all

    shutdown_all()
    torch.set_num_threads(threads)  # the app's router sets one thread for the web process


class Hold:
    """The worker's test barrier (cae.worker.HOLD_ENV): while engaged, training waits before each
    batch, so a test can see a job running, queue others behind it, cancel it, kill the worker."""

    def __init__(self, path: Path):
        self.path = path

    def engage(self) -> "Hold":
        self.path.touch()
        return self

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture
def hold(tmp_path, monkeypatch) -> Hold:
    """Set before the test's first job starts its worker (which reads it once)."""
    barrier = Hold(tmp_path / "hold")
    monkeypatch.setenv("CAE_WORKER_HOLD", str(barrier.path))
    yield barrier.engage()
    barrier.release()


def wait_until(condition, timeout: float = 120.0, what: str = "condition") -> None:
    import time

    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise TimeoutError(f"{what} not met after {timeout} s")
        time.sleep(0.02)


def copy_of_repository(target: Path) -> Path:
    """The repository as a fresh clone holds it (tracked and not-ignored files, no runs, no caches,
    no virtualenv): copied from this working tree, so uncommitted work is tested too."""
    listing = (
        subprocess.run(
            ["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listing):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture
def as_a_new_user(tmp_path, monkeypatch) -> Path:
    """A fresh copy of the repository as the working directory, no CAE_* variables, and HOME an
    empty folder: the README's commands, run the way a new user runs them."""
    clone = copy_of_repository(tmp_path / "cae-explorer")
    home = tmp_path / "home"
    home.mkdir()
    for name in [k for k in os.environ if k.startswith("CAE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(clone)
    return clone


@pytest.fixture(scope="session")
def small_folder(tmp_path_factory) -> Path:
    """30 train + 10 test real images per class (300 + 100)."""
    return make_image_folder(tmp_path_factory.mktemp("small") / "cifar", 30, 10)


@pytest.fixture(scope="session")
def small_dataset(small_folder, tmp_path_factory):
    os.environ.setdefault("CAE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    from cae.data import load_dataset

    return load_dataset(small_folder)


def zip_of(entries: dict[str, bytes]) -> bytes:
    """A zip archive (deflated) of {name inside it: bytes}, in memory."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()
