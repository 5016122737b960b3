"""The load a training meets: cores kept busy by other processes, measured from Linux's /proc, with
this process's own work left out (cae/load.py). Real busy processes, compared in one test."""

from __future__ import annotations

import subprocess
import sys
import time
from time import sleep as time_sleep

import pytest

from cae.load import PROC_STAT, LoadMeter, load_now

pytestmark = pytest.mark.skipif(not PROC_STAT.exists(), reason="the load is read from Linux's /proc")

SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def spin_here(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        pass


def test_another_process_spinning_counts_and_this_ones_own_work_does_not():
    own = LoadMeter()
    spin_here(0.8)
    while_i_spin = own.others()
    other = LoadMeter()
    child = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=0.8)])
    child.wait()
    while_another_spins = other.others()  # the child's start-up counts too: it is other work
    assert while_another_spins - while_i_spin > 0.5, (while_i_spin, while_another_spins)


def test_a_listed_process_is_left_out_like_this_one():
    child = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=1.5)])
    try:
        time.sleep(0.3)  # it has started
        counted, left_out = LoadMeter(), LoadMeter(exclude=(child.pid,))
        time.sleep(0.8)
        assert counted.others() - left_out.others() > 0.5, (counted.others(), left_out.others())
    finally:
        child.wait()


def test_the_load_now_waits_a_short_window_only_when_it_has_no_recent_sample(monkeypatch):
    import cae.load

    waits = []
    monkeypatch.setattr(cae.load.time, "sleep", lambda seconds: (waits.append(seconds), time_sleep(seconds)))
    exclude = (2**22 + 7,)  # a key of its own, so no earlier sample
    assert load_now(exclude, window=0.3) is not None and waits == [0.3]
    time_sleep(0.35)
    assert load_now(exclude, window=0.3) is not None and waits == [0.3]  # no wait: by the first call's sample


def test_the_load_a_run_met_is_the_others_demand_had_it_not_competed(monkeypatch):
    """On two cores, a one-thread run that got 0.8 of a core beside other work that got 1.2 shared
    a full machine: the others wanted 1 x 1.2 / 0.8 = 1.5 cores. Below a full machine, what they got."""
    meter = LoadMeter()
    monkeypatch.setattr(meter, "shares", lambda: (0.8, 1.2))
    assert meter.demand(threads=1, cores=2) == pytest.approx(1.5)
    monkeypatch.setattr(meter, "shares", lambda: (0.8, 0.9))  # 1.7 of 2 cores: they did not compete
    assert meter.demand(threads=1, cores=2) == pytest.approx(0.9)
