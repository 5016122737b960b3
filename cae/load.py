"""How busy this machine's cores are with other processes' work: the load a training met, and the
load a new one would meet now (the time estimates' second input, cae/timing.py). Read from Linux's
/proc; elsewhere every function answers None and the estimates go by speeds alone."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds() -> float | None:
    """CPU seconds every process here has spent busy since boot (all cores), None without /proc."""
    try:
        fields = PROC_STAT.read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS


def process_seconds(pid: int) -> float:
    """CPU seconds process `pid` has spent (user + system), 0 when it is gone."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(after_name[11]) + int(after_name[12])) / TICKS  # utime, stime


def own_seconds() -> float:
    """CPU seconds this process has spent, its threads' too."""
    times = os.times()
    return times.user + times.system


class LoadMeter:
    """Cores kept busy by processes other than this one (and `exclude`), on average since it began:
    the load a run met, or with a short wait, the load now."""

    def __init__(self, exclude: tuple[int, ...] = ()) -> None:
        self.exclude = exclude
        self.start = self._sample()

    def _sample(self) -> tuple[float, float | None, float]:
        mine = own_seconds() + sum(process_seconds(pid) for pid in self.exclude)
        return time.monotonic(), busy_seconds(), mine

    def shares(self) -> tuple[float, float] | None:
        """(this process's, other work's) average cores since the meter began; None without /proc or
        before a tenth of a second has passed."""
        (t0, busy0, mine0), (t1, busy1, mine1) = self.start, self._sample()
        if busy0 is None or busy1 is None or t1 - t0 < 0.1:
            return None
        own = (mine1 - mine0) / (t1 - t0)
        return own, max(0.0, (busy1 - busy0) / (t1 - t0) - own)

    def others(self) -> float | None:
        """Average cores busy with other processes' work since the meter began (None: unknown)."""
        shares = self.shares()
        return None if shares is None else shares[1]

    def demand(self, threads: int, cores: int) -> float | None:
        """The cores other work would have kept busy had this process (of `threads` threads) not been
        there, the same measure as `load_now` while it is idle: what the others got, or where the two
        together filled the machine, what they got scaled by the cores shared in proportion to threads
        (this process got threads / (threads + demand) of them)."""
        shares = self.shares()
        if shares is None:
            return None
        own, others = shares
        if own <= 0 or own + others < SATURATED * cores:
            return others
        return max(others, threads * others / own)


SATURATED = 0.9  # the cores' share busy above which processes are taken to compete for them


_last: dict[tuple[int, ...], LoadMeter] = {}
_lock = threading.Lock()
FRESH = 30.0  # seconds: an older sample says little about now


def load_now(exclude: tuple[int, ...] = (), window: float = 0.3) -> float | None:
    """Cores busy with other processes' work now: since this process last asked (if 0.3 to 30 s ago,
    so a page redrawn often does not wait), else over a `window` waited here."""
    with _lock:
        meter = _last.get(exclude)
        _last[exclude] = LoadMeter(exclude)
    if meter is not None and window <= time.monotonic() - meter.start[0] <= FRESH:
        return meter.others()
    meter = LoadMeter(exclude)
    time.sleep(window)
    return meter.others()
