"""Classroom mode (CAE_CLASSROOM=1): one server shared by a lecture hall.

Each browser holds a seat: a token in its address (?seat=…), kept on reloads. A seat owns the jobs
it submits, the runs those jobs write and the photos it uploads; the lecturer sets the caps below
through environment variables, and an admin password opens a view that can cancel or delete
anything. Without CAE_CLASSROOM nothing here restricts anything.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cae.config import Config
from cae.files import WriteError, write_atomically

# name: (what it sets, default); the README's "Running it for a class" lists the same
SETTINGS = {
    "CAE_MAX_EPOCHS": ("most autoencoder or classifier epochs one run may ask for", 30),
    "CAE_MAX_IMAGES": ("most training images one run may use", 50_000),
    "CAE_MAX_BATCH": ("largest batch size", 2_000),
    "CAE_MAX_QUEUED": ("most jobs one seat may have queued or training at once (a sweep is one)", 2),
    "CAE_UPLOAD_MB": ("photos one seat may upload, in MB once unpacked", 100),
}
SEAT = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
LEDGER = ".classroom.json"  # in the runs folder: which seat owns which run and which upload


class ClassroomError(ValueError):
    """A lecturer's setting that cannot be used; the message names the variable."""


def enabled(env=os.environ) -> bool:
    return env.get("CAE_CLASSROOM", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Caps:
    """The lecturer's limits for every seat."""

    epochs: int = SETTINGS["CAE_MAX_EPOCHS"][1]
    images: int = SETTINGS["CAE_MAX_IMAGES"][1]
    batch: int = SETTINGS["CAE_MAX_BATCH"][1]
    queued: int = SETTINGS["CAE_MAX_QUEUED"][1]
    upload_mb: int = SETTINGS["CAE_UPLOAD_MB"][1]

    @classmethod
    def from_env(cls, env=os.environ) -> "Caps":
        values = []
        for name, (_, default) in SETTINGS.items():
            text = env.get(name, "").strip()
            try:
                value = int(text) if text else default
            except ValueError:
                raise ClassroomError(f"{name}={text!r} is not a whole number.") from None
            if value < 1:
                raise ClassroomError(f"{name} must be at least 1 (it is {value}).")
            values.append(value)
        return cls(*values)


def refusal(cfg: Config, n_train: int, caps: Caps, queued: int) -> str | None:
    """Why a seat may not queue this training (a sentence), or None when it may."""
    images = min(cfg.limit or n_train, n_train)
    if queued >= caps.queued:
        return (f"You already have {queued} job{'s' * (queued != 1)} queued or training; in this class each seat "
                f"may have {caps.queued}. Wait for one to finish, or stop one on the Train page.")
    if max(cfg.ae_epochs, cfg.clf_epochs) > caps.epochs:
        return f"At most {caps.epochs} epochs per network in this class; ask for fewer."
    if max(cfg.batch_size, cfg.clf_batch_size or 0) > caps.batch:
        return f"The largest batch size in this class is {caps.batch:,}; choose a smaller one."
    if images > caps.images:
        return (f"At most {caps.images:,} training images per run in this class (this asks for {images:,}); "
                "choose a subset on the Train page.")
    return None


def sweep_refusal(budgets: tuple[int, ...], caps: Caps, queued: int) -> str | None:
    """Why a seat may not queue a label-budget sweep (it counts as one job), or None."""
    if queued >= caps.queued:
        return refusal(Config(), 0, caps, queued)
    if budgets and max(budgets) > caps.images:
        return f"At most {caps.images:,} training images per run in this class; this sweep reaches {max(budgets):,}."
    return None


def new_seat() -> str:
    return secrets.token_urlsafe(12)


def valid_seat(token: str | None) -> bool:
    return bool(token) and bool(SEAT.match(token))


def admin_password_matches(given: str, env=os.environ) -> bool:
    """The admin password, compared in constant time; always False when none is set."""
    expected = env.get("CAE_ADMIN_PASSWORD", "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class Ledger:
    """Who owns what, in the runs folder's .classroom.json: {"runs": {name: seat},
    "uploads": {seat: {folder: bytes}}}. Rewritten atomically; one lock per process."""

    _lock = threading.Lock()

    def __init__(self, runs_folder: Path):
        self.file = Path(runs_folder) / LEDGER

    def read(self) -> dict:
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            data = {}
        return {"runs": dict(data.get("runs") or {}), "uploads": dict(data.get("uploads") or {})}

    def _change(self, edit) -> None:
        with self._lock:
            data = self.read()
            edit(data)
            text = json.dumps(data, indent=1)
            try:
                write_atomically(self.file, lambda tmp: tmp.write_text(text), folder=False)
            except WriteError as exc:
                raise ClassroomError(f"Cannot record ownership in {self.file} ({exc}).") from None

    def owner(self, run_name: str) -> str | None:
        return self.read()["runs"].get(run_name)

    def claim_run(self, run_name: str, seat: str) -> None:
        """`seat` trained this run; a run that already has an owner keeps it."""
        self._change(lambda d: d["runs"].setdefault(run_name, seat))

    def forget_run(self, run_name: str) -> None:
        self._change(lambda d: d["runs"].pop(run_name, None))

    def uploads(self, seat: str) -> dict[str, int]:
        return self.read()["uploads"].get(seat, {})

    def upload_bytes(self, seat: str) -> int:
        return sum(self.uploads(seat).values())

    def record_upload(self, seat: str, folder: Path, size: int) -> None:
        self._change(lambda d: d["uploads"].setdefault(seat, {}).__setitem__(str(folder), size))


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under `folder` (an unpacked upload)."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
