"""Faults, bad input and security: nothing lost, nothing half-written, a sentence for every mistake."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cae.config import Config, ConfigError
from cae.data import DataError, load_dataset
from cae.experiment import train_or_load
from cae.runs import PRETRAINED_DIR, RunError, list_runs, load_run
from cae.uploads import ImageInputError, image_from_bytes

REPO = Path(__file__).resolve().parent.parent
TINY = dict(latent_dim=16, batch_size=100, precision="fp32", ae_epochs=1, clf_epochs=1, test_limit=50)
TINY_ARGS = [
    "--latent-dim",
    "16",
    "--batch-size",
    "100",
    "--precision",
    "fp32",
    "--ae-epochs",
    "1",
    "--clf-epochs",
    "1",
    "--test-limit",
    "50",
]


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "cae", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


# --- faults ---------------------------------------------------------------------------------


def test_a_killed_training_leaves_no_partial_run_and_the_same_config_trains_again(
    small_folder, tmp_path, small_dataset
):
    runs = tmp_path / "runs"
    old = train_or_load(Config(**TINY), small_dataset, runs).path
    args = [
        "train",
        "--data",
        str(small_folder),
        "--runs",
        str(runs),
        "--latent-dim",
        "16",
        "--batch-size",
        "50",
        "--ae-epochs",
        "200",
        "--clf-epochs",
        "1",
        "--precision",
        "fp32",
        "--test-limit",
        "50",
    ]
    proc = cli(*args)
    line = proc.stdout.readline()  # the dataset line, then training is under way
    assert line.startswith("Dataset:")
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert [i.path for i in list_runs(runs, pretrained=None)] == [old]  # nothing partial listed
    load_run(old)  # old runs intact
    short = cli(*[a if a != "200" else "1" for a in args])
    out, err = short.communicate(timeout=300)
    assert short.returncode == 0, err
    assert Path(out.strip().splitlines()[-1]).parent == runs


def test_an_unwritable_runs_folder_is_one_clear_line_from_the_cli(small_folder, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli(
        "train",
        "--data",
        str(small_folder),
        "--runs",
        str(blocker / "runs"),
        "--latent-dim",
        "16",
        "--ae-epochs",
        "1",
        "--clf-epochs",
        "0",
        "--batch-size",
        "100",
        "--test-limit",
        "50",
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert "Cannot write runs to" in err and "Traceback" not in err  # refused before any training


# A real full disk: the process's file-size limit, with SIGXFSZ ignored so a write that crosses it
# fails with EFBIG ("File too large") as a full disk fails with ENOSPC, instead of killing Python.
FILE_SIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


def limited_python(code: str, *args: str, limit: int = 100_000) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT.format(limit=limit) + code, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
        capture_output=True,
        timeout=300,
    )


def no_leftovers(runs: Path) -> bool:
    return not runs.exists() or list(runs.iterdir()) == []


def test_a_full_disk_in_the_cli_is_one_line_and_leaves_nothing(small_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_CACHE", str(tmp_path / "cache"))  # a cold cache: its write fails too
    runs = tmp_path / "runs"
    proc = limited_python(
        "from cae.__main__ import main; sys.exit(main(sys.argv[1:]))",
        "train",
        "--data",
        str(small_folder),
        "--runs",
        str(runs),
        *TINY_ARGS,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cae: error")]
    assert errors == [
        f"cae: error: Cannot write the run to {runs} (File too large); set CAE_RUNS or "
        "--runs to a writable folder with free space."
    ]
    assert "Traceback" not in proc.stderr
    assert "Could not write the dataset cache" in proc.stderr  # best effort: training went on
    assert "Autoencoder Iteration: 1/1" in proc.stdout
    assert no_leftovers(runs) and not list((tmp_path / "cache").glob("*.pt"))


def test_a_full_disk_in_the_library_save_raises_run_error_and_leaves_nothing(small_folder, tmp_path):
    runs = tmp_path / "runs"
    code = f"""
from cae.config import Config
from cae.data import load_dataset
from cae.runs import RunError, save_run
from cae.train import run_experiment
result = run_experiment(Config(**{TINY!r}), load_dataset({str(small_folder)!r}))
try:
    save_run(result, __import__("pathlib").Path({str(runs)!r}))
except RunError as exc:
    print("RunError:", exc)
"""
    proc = limited_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "RunError: Cannot write the run" in proc.stdout and "File too large" in proc.stdout
    assert no_leftovers(runs)


def app_test():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.run()
    return at


def test_an_unwritable_runs_folder_fails_the_job_with_its_message_and_the_app_keeps_running(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CAE_RUNS", str(blocker / "runs"))
    at = app_test()
    at.switch_page("app_pages/train.py").run()
    for key, value in dict(
        latent_dim=16,
        ae_epochs=1,
        clf_epochs=0,
        batch_size=128,
        subset="Custom size",
        limit_custom=128,
        test_limit=100,
        precision="fp32",
    ).items():
        at.session_state[key] = value
    at.run()
    at.button(key="train_button").click().run()
    from app_pages.caches import jobs

    job = jobs().wait(at.session_state["job_id"], 120)
    assert job.state == "failed" and "Cannot write the run" in job.error
    at.run()
    assert not at.exception
    assert any("Cannot write the run" in m.value for m in at.markdown)
    for page in ("app_pages/overview.py", "app_pages/kernels.py"):
        at.switch_page(page).run()
        assert not at.exception


def test_damaged_pretrained_files_are_named_and_the_other_runs_work(tmp_path, monkeypatch, small_dataset):
    shipped = tmp_path / "pretrained"
    shutil.copytree(PRETRAINED_DIR, shipped)
    default = shipped / json.loads((shipped / "index.json").read_text())["default"]  # the run the app opens
    data = (default / "autoencoder.pt").read_bytes()
    (default / "autoencoder.pt").write_bytes(data[: len(data) // 3])  # truncated
    monkeypatch.setenv("CAE_PRETRAINED", str(shipped))
    good = train_or_load(Config(**TINY), small_dataset).path
    at = app_test()
    assert not at.exception
    at.switch_page("app_pages/kernels.py").run()
    assert any("autoencoder.pt is damaged" in e.value for e in at.error)
    at.session_state["viewing"] = str(good)
    at.run()
    at.switch_page("app_pages/kernels.py").run()
    assert not at.exception and not at.error


# --- bad input ------------------------------------------------------------------------------


def png(mode: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"%PDF-1.4 definitely not a picture", "not a picture"),
        (b"\x89PNG\r\n\x1a\n broken", "not a picture"),
    ],
)
def test_unusable_uploads_get_a_sentence(data, message):
    with pytest.raises(ImageInputError, match=message):
        image_from_bytes(data)


@pytest.mark.parametrize(
    "mode, size, note",
    [
        ("L", (32, 32), "converted from L to RGB"),
        ("RGBA", (32, 32), "converted from RGBA to RGB"),
        ("RGB", (1, 1), "resized from 1x1 to 32x32"),
        ("RGB", (640, 480), "resized from 640x480 to 32x32"),
    ],
)
def test_odd_images_are_converted_with_a_note(mode, size, note):
    image, notes = image_from_bytes(png(mode, size))
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert any(note in n for n in notes)


def test_a_decompression_bomb_is_refused():
    with pytest.raises(ImageInputError, match="100 megapixels; upload one under 40"):
        image_from_bytes(png("1", (10_000, 10_000)))  # 100 megapixels in a few kilobytes


def test_uploads_are_capped_in_the_server_config():
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 10


def with_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not an image")
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: with_file(p / "f.txt"), "is a file"),
        (lambda p: with_file(p / "d" / "notes.txt").parent, "no train/ or test/"),
    ],
)
def test_bad_data_paths_in_the_app_get_a_sentence(tmp_path, monkeypatch, make, message):
    monkeypatch.setenv("CAE_DATA", str(make(tmp_path)))
    at = app_test()
    at.switch_page("app_pages/data.py").run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    for page in ("app_pages/train.py", "app_pages/kernels.py", "app_pages/try_image.py"):
        at.switch_page(page).run()
        assert not at.exception


# --- security -------------------------------------------------------------------------------


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {Path(os.environ['CAE_CACHE']) / 'pwned'}",))


def test_weights_are_never_unpickled_as_code(small_dataset, tmp_path):
    path = train_or_load(Config(**TINY), small_dataset, tmp_path).path
    torch.save({"conv_encoder.0.weight": Exploit()}, path / "autoencoder.pt")
    with pytest.raises(RunError, match="autoencoder.pt is damaged"):
        load_run(path)
    assert not (Path(os.environ["CAE_CACHE"]) / "pwned").exists()


def test_the_dataset_cache_is_read_without_unpickling_code(small_folder):
    from cae import data

    load_dataset(small_folder)
    for cached in data.cache_dir().glob("folder-*.pt"):
        cached.write_bytes(b"")
        torch.save({"images": Exploit()}, cached)
    load_dataset(small_folder)  # a poisoned cache file is not trusted: it is rebuilt
    assert not (Path(os.environ["CAE_CACHE"]) / "pwned").exists()


# --- properties -----------------------------------------------------------------------------

values = st.one_of(
    st.integers(-10, 10_000),
    st.floats(-2, 5),
    st.just(float("nan")),
    st.none(),
    st.booleans(),
    st.sampled_from(["bilinear", "nearest", "transpose", "auto", "fp32", "bf16", "cpu", "x", ""]),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(Config().to_dict())), values, max_size=6))
def test_config_validation_accepts_or_explains(changes):
    try:
        cfg = Config(**changes)
    except ConfigError as exc:
        assert str(exc).endswith(".") and len(str(exc)) < 200
    else:
        assert 2 <= cfg.latent_dim <= 4096 and 0 <= cfg.leak <= 1 and 0 < cfg.label_fraction <= 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(
        st.tuples(
            st.sampled_from(["train", "test"]),
            st.sampled_from(["a", "b"]),
            st.sampled_from([".png", ".jpg", ".txt", ".bmp", ""]),
            st.binary(max_size=40),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_the_folder_loader_loads_or_explains(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("prop")
    for i, (split, cls, ext, payload, real) in enumerate(files):
        folder = root / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        if real:
            Image.new("RGB", (8 + i, 8)).save(folder / f"{i}.png")
        else:
            (folder / f"{i}{ext}").write_bytes(payload)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped non-images warn; that is tested elsewhere
            d = load_dataset(root)
    except DataError as exc:
        assert str(exc)
    else:
        assert d.train.images.shape[1:] == (3, 32, 32) and len(d.classes) >= 1


def test_a_typed_data_path_shows_thumbnails_never_file_contents(tmp_path, monkeypatch):
    from tests.conftest import make_image_folder

    root = make_image_folder(tmp_path / "d", 2, 1, classes=("a", "b"))
    (root / "train" / "a" / "secret.txt").write_text("TOP-SECRET-PASSWORD")
    monkeypatch.setenv("CAE_DATA", str(root))
    at = app_test()
    at.switch_page("app_pages/data.py").run()
    assert not at.exception
    shown = " ".join(
        str(getattr(e, "value", ""))
        for e in [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.text, *at.code]
    )
    assert "TOP-SECRET" not in shown
    assert any("skipped 1 file" in c.value for c in at.caption)  # it is counted, not shown
