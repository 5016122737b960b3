"""Start the app with `streamlit run` as a subprocess and wait until it is healthy: for the
browser tests and the benchmarks that measure a real server. Not part of the app: tests/e2e and bench/
use it (it never imports streamlit)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_latency(url: str, timeout: float = 5.0) -> float | None:
    """Seconds for one /_stcore/health answer, or None when it did not answer."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout) as response:
            return time.perf_counter() - start if response.status == 200 else None
    except OSError:
        return None


def inherited_env(keep_cae_env: bool = True) -> dict[str, str]:
    """This process's environment, with or without its CAE_* settings."""
    return {k: v for k, v in os.environ.items() if keep_cae_env or not k.startswith("CAE_")}


class AppServer:
    """`streamlit run streamlit_app.py` on a free loopback port; `stop()` in every case.

    `cwd` is the folder it runs in (a fresh copy of the repository, for tests that run it the way
    a new user does); `keep_cae_env=False` drops every CAE_* variable of this process."""

    def __init__(self, env: dict[str, str], log: Path, cwd: Path = REPO, keep_cae_env: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=cwd,
            env={**inherited_env(keep_cae_env), "PYTHONPATH": str(cwd), **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.healthy_after = self.wait_healthy()

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from start until /_stcore/health answers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}; see {self.log.name}")
            if health_latency(self.url, 2) is not None:
                return time.perf_counter() - self.started
            time.sleep(0.05)
        raise TimeoutError(f"streamlit not healthy after {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        """Stop the server and everything it started (its own process group)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self) -> "AppServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
