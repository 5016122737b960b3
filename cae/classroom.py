"""Classroom mode (CAE_CLASSROOM=1): one server shared by a lecture hall.

Each browser holds a seat: a token in its address (?seat=…), kept on reloads. A seat owns the jobs
it submits, the runs those jobs write and the photos it uploads; the lecturer sets the caps below
through environment variables, and an admin password opens a view that can cancel or delete
anything. Without CAE_CLASSROOM nothing here restricts anything.
"""

from __future__ import annotations

import copy
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
    "CAE_MAX_QUEUED_TOTAL": ("most jobs queued or training on the whole server, all seats together", 20),
    "CAE_UPLOAD_MB_TOTAL": ("photos all seats together may upload, in MB once unpacked", 2_000),
    "CAE_SEATS_PER_MINUTE": (
        "new seats one client address may get per minute (a hall behind one NAT shares one "
        "address, so at least the class size)",
        300,
    ),
    "CAE_MAX_SEATS": ("seats the server keeps at once (unused ones are forgotten first)", 2_000),
    "CAE_UPLOAD_FILES": ("pictures one seat may upload, all its uploads together", 10_000),
    "CAE_UPLOAD_MEGAPIXELS": ("megapixels one seat's pictures may decode to, all its uploads together", 2_000),
}
SEAT = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
SEAT_COOKIE = "cae_seat"  # the browser keeps its seat here, never in the address (links are shared)
CODE_LETTERS = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L or U/V look-alikes: read off a screen
LEDGER = ".classroom.json"  # in the runs folder: the seats it issued, who owns which run and which upload


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
    queued_total: int = SETTINGS["CAE_MAX_QUEUED_TOTAL"][1]
    upload_mb_total: int = SETTINGS["CAE_UPLOAD_MB_TOTAL"][1]
    seats_per_minute: int = SETTINGS["CAE_SEATS_PER_MINUTE"][1]
    max_seats: int = SETTINGS["CAE_MAX_SEATS"][1]
    upload_files: int = SETTINGS["CAE_UPLOAD_FILES"][1]
    upload_megapixels: int = SETTINGS["CAE_UPLOAD_MEGAPIXELS"][1]

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


def refusal(cfg: Config, n_train: int, caps: Caps, queued: int, queued_total: int = 0) -> str | None:
    """Why a seat may not queue this training (a sentence), or None when it may. `queued` counts
    the seat's active jobs, `queued_total` every seat's."""
    images = min(cfg.limit or n_train, n_train)
    if queued_total >= caps.queued_total:
        return (
            f"The server's queue is full ({queued_total} jobs queued or training, the class's limit); "
            "try again when some have finished."
        )
    if queued >= caps.queued:
        return (
            f"You already have {queued} job{'s' * (queued != 1)} queued or training; in this class each seat "
            f"may have {caps.queued}. Wait for one to finish, or stop one on the Train page."
        )
    if max(cfg.ae_epochs, cfg.clf_epochs) > caps.epochs:
        return f"At most {caps.epochs} epochs per network in this class; ask for fewer."
    if max(cfg.batch_size, cfg.clf_batch_size or 0) > caps.batch:
        return f"The largest batch size in this class is {caps.batch:,}; choose a smaller one."
    if images > caps.images:
        return (
            f"At most {caps.images:,} training images per run in this class (this asks for {images:,}); "
            "choose a subset on the Train page."
        )
    return None


def sweep_refusal(budgets: tuple[int, ...], seeds: int, caps: Caps, queued: int, queued_total: int = 0) -> str | None:
    """Why a seat may not queue a label-budget sweep (it counts as one job), or None. Its points
    train by steps, not epochs, so its work (images through a network) is held to what one run at
    the caps may do: three networks, caps.epochs epochs of caps.images images each."""
    from cae.budget import sweep_work

    if queued_total >= caps.queued_total or queued >= caps.queued:
        return refusal(Config(), 0, caps, queued, queued_total)
    if budgets and max(budgets) > caps.images:
        return f"At most {caps.images:,} training images per run in this class; this sweep reaches {max(budgets):,}."
    work, allowed = sweep_work(budgets, seeds), 3 * caps.epochs * caps.images
    if work > allowed:
        return (
            f"This sweep would train on {work:,} images in all, more than one run may in this class "
            f"({allowed:,}: 3 networks × {caps.epochs} epochs × {caps.images:,} images); choose fewer "
            "budgets or seeds."
        )
    return None


def new_seat() -> str:
    return secrets.token_urlsafe(24)


def new_code() -> str:
    """A seat code a student can type in another browser: 8 letters, about 39 bits."""
    letters = "".join(secrets.choice(CODE_LETTERS) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def plain_code(typed: str) -> str:
    """A typed seat code in the form stored: upper case, the dash where it belongs."""
    letters = "".join(c for c in typed.upper() if c in CODE_LETTERS)
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else ""


def valid_seat(token: str | None) -> bool:
    return bool(token) and bool(SEAT.match(token))


MIN_PASSWORD = 12  # characters, spaces at either end not counted


def password_problem(env=os.environ) -> str | None:
    """Why the Lecturer page stays closed (a sentence for the page and the server log), or None
    when CAE_ADMIN_PASSWORD can be used."""
    expected = env.get("CAE_ADMIN_PASSWORD")
    if expected is None or expected == "":
        return "The lecturer's view is off: start the app with CAE_ADMIN_PASSWORD set to open it."
    if len(expected.strip()) < MIN_PASSWORD:
        return (
            f"The lecturer's view stays closed: CAE_ADMIN_PASSWORD is shorter than {MIN_PASSWORD} characters "
            "(spaces at either end do not count), which a class could guess; restart with a longer one."
        )
    return None


def admin_password_matches(given: str, env=os.environ) -> bool:
    """The admin password, compared in constant time; always False when it is unset or too short."""
    expected = env.get("CAE_ADMIN_PASSWORD", "")
    return password_problem(env) is None and hmac.compare_digest(given.encode(), expected.encode())


class Attempts:
    """Wrong lecturer passwords, counted per browser session and per client address. After
    FREE_TRIES wrong ones, each further try waits (FIRST_WAIT seconds, then twice as long as the
    last), up to a cap: a session up to 10 minutes, an address up to one minute (a lecture hall
    behind one NAT shares an address
    with the lecturer, so no student can lock the lecturer out for longer). Nothing is server-wide."""

    FREE_TRIES = 3
    FIRST_WAIT = 5.0
    CAPS = {"session": 600.0, "address": 60.0}

    def __init__(self, clock=None):
        import time

        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}  # (kind, key) -> (count, last failure)

    def _wait(self, kind: str, key: str, now: float) -> float:
        count, last = self._failures.get((kind, key), (0, now))
        if count < self.FREE_TRIES:
            return 0.0
        return max(0.0, last + min(self.CAPS[kind], self.FIRST_WAIT * 2.0 ** (count - self.FREE_TRIES)) - now)

    def wait(self, session: str, address: str | None) -> float:
        """Seconds before this session (from this address) may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            return max(
                [self._wait("session", session, now)] + ([self._wait("address", address, now)] if address else [])
            )

    def failed(self, session: str, address: str | None) -> int:
        """Record a wrong password; returns this session's count of failures."""
        now = self._clock()
        with self._lock:
            for kind, key in (("session", session), ("address", address)):
                if key:
                    count, _ = self._failures.get((kind, key), (0, now))
                    self._failures[(kind, key)] = (count + 1, now)
            return self._failures[("session", session)][0]

    def succeeded(self, session: str) -> None:
        with self._lock:
            self._failures.pop(("session", session), None)


class LecturerGate:
    """The lecturer's password, checked so that no student can lock the lecturer out and no one can
    grind it. Wrong passwords slow only the browser session that typed them (`Attempts`, per
    session: nothing keyed by an address a hall shares). The class as a whole gets WINDOW_FAILURES
    wrong passwords per WINDOW seconds, however many sessions or cookies they come from; past that,
    a password is checked only beside the one-time lecturer code this server writes to its log
    (the lecturer runs the server, a student does not see its log), and WINDOW_FAILURES more wrong
    codes or passwords make a new code. So a guesser gets at most WINDOW_FAILURES guesses per
    window, and the lecturer always gets in: with the password, or with the password and the code."""

    WINDOW = 600.0
    WINDOW_FAILURES = 20

    def __init__(self, clock=None, log=None):
        import logging
        import time

        self._clock = clock or time.monotonic
        self._log = log or logging.getLogger("cae.lecturer").warning
        self._lock = threading.Lock()
        self._failures: list[float] = []  # when each wrong password or code was typed, all sessions
        self._code: str | None = None  # the one-time code, while the password alone is not enough
        self.sessions = Attempts(clock=self._clock)

    def code_needed(self) -> bool:
        """Whether a password is checked only with the code from the server's log."""
        with self._lock:
            return self._closed(self._clock())

    def _closed(self, now: float) -> bool:
        self._failures = [t for t in self._failures if t > now - self.WINDOW]
        if self._code is None and len(self._failures) >= self.WINDOW_FAILURES:
            self._new_code()
        return self._code is not None

    def _new_code(self) -> None:
        self._code, self._failures = new_code(), []
        self._log(
            "Lecturer code: %s. Many wrong lecturer passwords were typed, so the Lecturer page asks for "
            "this code beside the password until it opens.",
            self._code,
        )

    def open(self, session: str, password: str, code: str = "", who: str = "", env=os.environ) -> str | None:
        """None when the lecturer's view opens for this session; else the sentence why not. Each
        wrong password (not a try refused while its session waits) is a line in the log, with `who`."""
        if (wait := self.sessions.wait(session, None)) > 0:
            return f"Too many wrong passwords from this browser: try again in {wait:.0f} s."
        with self._lock:
            now = self._clock()
            needs_code = self._closed(now)
            code_ok = not needs_code or hmac.compare_digest(plain_code(code).encode(), (self._code or "").encode())
            if code_ok and admin_password_matches(password, env):
                self._code, self._failures = None, []
                self.sessions.succeeded(session)
                return None
            self._failures.append(now)
            wrong = len(self._failures)
            if needs_code and wrong >= self.WINDOW_FAILURES:
                self._new_code()  # the code itself is not ground either
        self._log(
            "Lecturer page: wrong password%s from %s (session %s…), %d wrong in %d minutes from all sessions",
            " or code" if needs_code else "",
            who or "this machine",
            session[:8],
            wrong,
            self.WINDOW // 60,
        )
        self.sessions.failed(session, None)
        if needs_code:
            return (
                "After many wrong passwords the password is checked only with the lecturer code in the "
                "server's log (a line starting 'Lecturer code:'); type both."
            )
        return "That is not the lecturer's password."


SEAT_IDLE_DAYS = 30  # a seat not seen for this long has expired: its browser gets a new one
UNCLAIMED_SECONDS = 600  # a seat never seen again, with no run or upload, may be forgotten after this
SEEN_EVERY = 3600.0  # a seat's last visit is written at most once an hour


class Ledger:
    """Who owns what, in the runs folder's .classroom.json: {"seats": {token: {code, address,
    created, seen}}, "runs": {name: seat}, "uploads": {seat: {folder: bytes}}, "upload_use": {seat:
    {folder: [pictures, pixels]}}}. Rewritten atomically; one lock per process; read again only
    when the file changed (a page run reads it without parsing it)."""

    _lock = threading.Lock()
    _parsed: dict[str, tuple[tuple[int, int, int], dict]] = {}  # file -> ((inode, mtime_ns, size), contents)

    def __init__(self, runs_folder: Path):
        self.file = Path(runs_folder) / LEDGER

    def read(self) -> dict:
        """The ledger as it is on disk (never edit what this returns: `_change` does)."""
        try:
            stat = self.file.stat()
            version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(str(self.file))
            if cached is not None and cached[0] == version:
                return cached[1]
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            version, data = None, {}
        data = {key: dict(data.get(key) or {}) for key in ("runs", "uploads", "seats", "upload_use")}
        if version is not None:
            self._parsed[str(self.file)] = (version, data)
        return data

    # --- seats: only those this server issued exist, and only while they are used ------------

    def issue_seat(
        self, address: str | None, now: float, max_seats: int = SETTINGS["CAE_MAX_SEATS"][1]
    ) -> tuple[str, str]:
        """A new seat (its secret token and its code), recorded with the address that asked. At
        `max_seats`, expired seats and seats never used after they were issued go first; a
        ClassroomError says so when the class is still full."""
        token, code = new_seat(), new_code()

        def edit(d: dict) -> None:
            if len(d["seats"]) >= max_seats:
                self._forget_unused(d, now)
            if len(d["seats"]) >= max_seats:
                raise ClassroomError(
                    f"This server already keeps {max_seats:,} seats, its limit (CAE_MAX_SEATS); ask the lecturer."
                )
            d["seats"][token] = {"code": code, "address": address, "created": now, "seen": now}

        self._change(edit)
        return token, code

    @staticmethod
    def _forget_unused(d: dict, now: float) -> None:
        """Drop expired seats, and seats never seen again that own nothing, issued over
        UNCLAIMED_SECONDS ago (a client that keeps no cookie leaves only those)."""
        owners = set(d["runs"].values()) | set(d["uploads"])
        for token, seat in list(d["seats"].items()):
            seen = seat.get("seen", seat.get("created", 0))
            unclaimed = token not in owners and seen <= seat.get("created", 0) and seen < now - UNCLAIMED_SECONDS
            if unclaimed or seen < now - SEAT_IDLE_DAYS * 86400:
                del d["seats"][token]

    def has_seat(self, token: str | None, now: float | None = None) -> bool:
        """A seat this server issued and that has not expired."""
        import time

        seat = self.read()["seats"].get(token) if token and valid_seat(token) else None
        if seat is None:
            return False
        return seat.get("seen", seat.get("created", 0)) >= (now or time.time()) - SEAT_IDLE_DAYS * 86400

    def saw(self, token: str, now: float) -> None:
        """A browser came back with this seat: its last visit, written at most once an hour."""
        if now - self.read()["seats"].get(token, {}).get("seen", 0) > SEEN_EVERY:
            self._change(lambda d: d["seats"].get(token, {}).__setitem__("seen", now) if token in d["seats"] else None)

    def code_of(self, token: str) -> str:
        return self.read()["seats"].get(token, {}).get("code", "")

    def seat_of_code(self, typed: str) -> str | None:
        code = plain_code(typed)
        return next((t for t, s in self.read()["seats"].items() if code and s.get("code") == code), None)

    def seats_issued_since(self, address: str | None, since: float) -> int:
        """Seats issued to `address` (None: this machine) at or after `since`."""
        return sum(s.get("address") == address and s.get("created", 0) >= since for s in self.read()["seats"].values())

    def _change(self, edit) -> None:
        with self._lock:
            data = copy.deepcopy(self.read())
            edit(data)
            text = json.dumps(data, indent=1)
            try:
                write_atomically(self.file, lambda tmp: tmp.write_text(text), folder=False)
                stat = self.file.stat()
            except (WriteError, OSError) as exc:
                raise ClassroomError(f"Cannot record ownership in {self.file} ({exc}).") from None
            self._parsed[str(self.file)] = ((stat.st_ino, stat.st_mtime_ns, stat.st_size), data)

    def owner(self, run_name: str) -> str | None:
        return self.read()["runs"].get(run_name)

    def claim_run(self, run_name: str, seat: str) -> None:
        """`seat` trained this run; a run that already has an owner keeps it."""
        self._change(lambda d: d["runs"].setdefault(run_name, seat))

    def forget_run(self, run_name: str) -> None:
        self._change(lambda d: d["runs"].pop(run_name, None))

    def uploads(self, seat: str) -> dict[str, int]:
        return self.read()["uploads"].get(seat, {})

    def upload_bytes(self, seat: str | None = None) -> int:
        """What `seat` has uploaded (unpacked bytes on disk); every seat's together when None."""
        uploads = self.read()["uploads"]
        return sum(sum(u.values()) for s, u in uploads.items() if seat is None or s == seat)

    def record_upload(self, seat: str, folder: Path, size: int, files: int = 0, pixels: int = 0) -> None:
        """`seat` uploaded `folder`, charged `size` bytes, `files` pictures and `pixels` decoded
        (the same folder again is charged once)."""

        def edit(d: dict) -> None:
            d["uploads"].setdefault(seat, {})[str(folder)] = size
            d["upload_use"].setdefault(seat, {})[str(folder)] = [files, pixels]

        self._change(edit)

    def upload_use(self, seat: str) -> tuple[int, int]:
        """(pictures, pixels) `seat` has uploaded, all its uploads together."""
        uses = self.read()["upload_use"].get(seat, {}).values()
        return sum(u[0] for u in uses), sum(u[1] for u in uses)


def upload_cost(folder: Path) -> tuple[int, int, int]:
    """What an unpacked upload costs the server: (bytes on disk, its files' blocks and the decoded
    cache the app derives from it, 32x32x3 bytes a picture; pictures; pixels as decoded)."""
    from cae.data import image_pixels
    from cae.uploads import DECODED_BYTES

    files = [f for f in Path(folder).rglob("*") if f.is_file()]
    disk = sum(f.stat().st_blocks * 512 for f in files)
    pixels = sum(image_pixels(f) or 0 for f in files)
    return disk + len(files) * DECODED_BYTES, len(files), pixels


def upload_budget(ledger: Ledger, seat: str, caps: Caps):
    """What `seat` may still upload (cae.uploads.Budget): bytes, pictures and pixels left of its
    caps, and bytes left of the class's."""
    from cae.uploads import MAX_FILES, MAX_TOTAL_PIXELS, MAX_UNPACKED_BYTES, Budget

    files, pixels = ledger.upload_use(seat)
    left = caps.upload_mb * 1_000_000 - ledger.upload_bytes(seat)
    class_left = caps.upload_mb_total * 1_000_000 - ledger.upload_bytes()
    return Budget(
        bytes=max(0, min(MAX_UNPACKED_BYTES, left, class_left)),
        pixels=max(0, min(MAX_TOTAL_PIXELS, caps.upload_megapixels * 1_000_000 - pixels)),
        files=max(0, min(MAX_FILES, caps.upload_files - files)),
    )


# --- the queue's side of ownership (cae/jobs.py) ---------------------------------------------


def record_owner(runs_dir: Path, job) -> str | None:
    """Record the seat that trained a job's run; a record that fails is said (as the job's note)."""
    try:
        Ledger(runs_dir).claim_run(job.run_path.name, job.owner)
    except ClassroomError as exc:
        return str(exc)
    return None


def active_jobs_of(manager, seat: str) -> list:
    """The trainings and sweeps a seat submitted that are queued or running."""
    return _active_of(manager.jobs(), seat)


def _active_of(jobs: list, seat: str | None = None) -> list:
    return [j for j in jobs if j.active and j.trains and (seat is None or j.owner == seat)]


def admission(seat: str, caps: Caps, cfg: Config | None = None, n_train: int = 0, budgets=None, seeds: int = 1):
    """The caps for this seat's new training (or label-budget sweep, with `budgets`), as the queue
    applies them under its lock to the jobs as they are then (JobManager.submit's `admit`)."""

    def admit(jobs: list) -> str | None:
        queued, total = len(_active_of(jobs, seat)), len(_active_of(jobs))
        if budgets is not None:
            return sweep_refusal(budgets, seeds, caps, queued, total)
        return refusal(cfg, n_train, caps, queued, total)

    return admit
