"""Take a run home: the command that asks for exactly this run, and a standalone script that trains
the same model with the same recipe, without `cae`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cae.config import Config
from cae.experiment import train_or_load, transfer_config
from cae.export import reproduce_command, standalone_script
from cae.runs import PRETRAINED_DIR, RunError, load_run, pretrained_index, runs_dir

REPO = Path(__file__).resolve().parent.parent
# The script and the app agree on data order and initial weights; they differ in memory layout
# (the app trains channels_last), which changes float rounding only: the printed 4-digit losses
# were equal in every epoch when measured, so a relative 1e-3 leaves room for rounding only.
FIRST_EPOCH_TOLERANCE = 1e-3  # relative


def cae(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cae", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=600
    )


def run_script(file: Path, data: Path, cwd: Path) -> subprocess.CompletedProcess:
    """An exported script run as a user runs it: fp32, on `data`, with no `cae` on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(file), "--data", str(data), "--precision", "fp32"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_the_exported_script_trains_like_the_app_without_cae(small_folder, tmp_path):
    made = cae(
        "train",
        "--latent-dim",
        "16",
        "--batch-size",
        "50",
        "--ae-epochs",
        "4",
        "--clf-epochs",
        "1",
        "--precision",
        "fp32",
        "--data",
        str(small_folder),
        "--runs",
        str(tmp_path / "runs"),
    )
    assert made.returncode == 0, made.stderr
    run = load_run(made.stdout.strip().splitlines()[-1])
    script = standalone_script(run, "A tiny run")
    assert "import cae" not in script and "from cae" not in script
    (tmp_path / "home").mkdir()
    file = tmp_path / "home" / f"{run.name}.py"
    file.write_text(script)
    out = run_script(file, small_folder, file.parent)
    assert out.returncode == 0, out.stderr
    losses = [float(x) for x in re.findall(r"Autoencoder epoch \d: train MSE ([0-9.]+)", out.stdout)]
    assert len(losses) == 4 and losses[-1] < losses[0] / 2  # it trains
    app = [row["train_mse"] for row in run.metrics["autoencoder"]]
    assert abs(losses[0] - app[0]) / app[0] < FIRST_EPOCH_TOLERANCE, (losses, app)
    assert all(abs(a - b) / b < FIRST_EPOCH_TOLERANCE for a, b in zip(losses, app)), (losses, app)  # every epoch
    assert "Fine-tuning epoch 1: training loss" in out.stdout and "Scratch epoch 1" in out.stdout
    assert "Fine-tuning, per class: " in out.stdout


def test_a_label_budget_point_exports_its_labels_steps_and_seed(small_folder, tmp_path):
    """A sweep point's recipe: 60 labels drawn with seed 2, exactly 14 steps of batch 10, the scratch
    baseline from seed 5's weights."""
    made = cae(
        "train",
        "--latent-dim",
        "16",
        "--batch-size",
        "50",
        "--ae-epochs",
        "1",
        "--label-count",
        "60",
        "--clf-steps",
        "14",
        "--clf-seed",
        "2",
        "--scratch-seed",
        "5",
        "--clf-batch-size",
        "10",
        "--precision",
        "fp32",
        "--data",
        str(small_folder),
        "--runs",
        str(tmp_path / "runs"),
    )
    assert made.returncode == 0, made.stderr
    run = load_run(made.stdout.strip().splitlines()[-1])
    file = tmp_path / "point.py"
    file.write_text(standalone_script(run, "A label-budget point"))
    out = run_script(file, small_folder, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "60 labelled images for the classifiers" in out.stdout
    for name, rows in (("Fine-tuning", run.metrics["classifier"]), ("Scratch", run.metrics["scratch"]["classifier"])):
        printed = re.findall(rf"{name} epoch (\d+): training loss ([0-9.]+)", out.stdout)
        assert [int(e) for e, _ in printed] == [row["epoch"] for row in rows]  # 14 steps of 6 a epoch: 3 epochs
        # the same labelled draw, head and order: the first loss agrees to its printed digits; later ones
        # drift by float rounding (the app trains channels_last), within 2% on synthetic images
        assert abs(float(printed[0][1]) - rows[0]["train_loss"]) < 2e-3, (printed, rows)
        assert all(
            abs(float(loss) - row["train_loss"]) < 0.02 * row["train_loss"] for (_, loss), row in zip(printed, rows)
        ), (printed, rows)


def test_the_command_asks_for_exactly_this_run(small_folder, small_dataset, tmp_path):
    cfg = Config(
        latent_dim=16,
        batch_size=100,
        ae_epochs=1,
        clf_epochs=1,
        precision="fp32",
        flip=True,
        scratch_baseline=False,
        test_limit=50,
        label_fraction=0.5,
    )
    run = load_run(train_or_load(cfg, small_dataset, runs_dir()).path)
    command = reproduce_command(run)
    assert "--flip" in command and "--no-scratch" in command and "--label-fraction 0.5" in command
    assert command.endswith(f"--data {shlex.quote(str(small_folder))}")
    again = cae(*shlex.split(command)[3:], "--runs", str(runs_dir()))
    assert again.returncode == 0, again.stderr
    assert "An identical run exists; reusing it" in again.stdout
    for page in ("app_pages/train.py", "app_pages/classifier.py"):  # both pages offer it for the run viewed
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
        at.query_params["run"], at.query_params["data"] = run.name, str(small_folder)
        at.run()
        at.switch_page(page).run()
        assert not at.exception and command in [c.value for c in at.code], page


def test_a_transfer_run_is_not_exported_and_says_why(small_dataset):
    shipped = load_run(PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"])
    cfg = transfer_config(shipped, clf_epochs=1, batch_size=100, scratch_baseline=False, test_limit=50)
    run = load_run(train_or_load(cfg, small_dataset, runs_dir()).path)
    with pytest.raises(RunError, match="fine-tunes the encoder of .* export that run's script"):
        standalone_script(run, "transfer")
    assert "--encoder-from" in reproduce_command(run)


def tiny_pretraining(options: list[str], epochs: int, folder, tmp_path):
    """A run trained by the command line with these pretraining options: latent 16, batch 50,
    `epochs` autoencoder epochs, no classifier, fp32, on `folder`."""
    made = cae(
        "train",
        *options,
        *("--latent-dim", "16", "--batch-size", "50", "--ae-epochs", str(epochs), "--clf-epochs", "0"),
        *("--precision", "fp32", "--data", str(folder), "--runs", str(tmp_path / "runs")),
    )
    assert made.returncode == 0, made.stderr
    return load_run(made.stdout.strip().splitlines()[-1])


def exported_and_run(run, title: str, folder, tmp_path):
    """The run's standalone script, written and run on `folder`; its completed process."""
    file = tmp_path / "exported.py"
    file.write_text(standalone_script(run, title))
    out = run_script(file, folder, tmp_path)
    assert out.returncode == 0, out.stderr
    return out


def test_a_denoising_masked_cropped_run_exports_the_same_draws_and_its_command_finds_it(small_folder, tmp_path):
    """The three pretraining options at once (crops, then noise, then masks, from their own
    generator): the script repeats the app's draws, so its autoencoder losses agree epoch by epoch."""
    options = ["--noise", "0.2", "--mask", "0.5", "--augment"]
    run = tiny_pretraining(options, 3, small_folder, tmp_path)
    assert (run.config.noise, run.config.mask, run.config.augment) == (0.2, 0.5, True)
    command = reproduce_command(run)
    assert all(option in shlex.split(command) for option in options), command
    again = cae(*shlex.split(command)[3:], "--runs", str(tmp_path / "runs"))
    assert "An identical run exists; reusing it" in again.stdout, again.stdout + again.stderr
    out = exported_and_run(run, "Denoising, masking and crops", small_folder, tmp_path)
    losses = [float(x) for x in re.findall(r"Autoencoder epoch \d: train MSE ([0-9.]+)", out.stdout)]
    app = [row["train_mse"] for row in run.metrics["autoencoder"]]
    assert len(losses) == 3 and all(abs(a - b) / b < FIRST_EPOCH_TOLERANCE for a, b in zip(losses, app)), (losses, app)


def test_a_contrastive_run_exports_a_script_that_pretrains_the_same_way(small_folder, tmp_path):
    run = tiny_pretraining(["--objective", "contrastive"], 2, small_folder, tmp_path)
    assert "--objective contrastive" in reproduce_command(run)
    out = exported_and_run(run, "Contrastive", small_folder, tmp_path)
    losses = [float(x) for x in re.findall(r"Contrastive epoch \d: NT-Xent ([0-9.]+)", out.stdout)]
    app = [row["train_loss"] for row in run.metrics["autoencoder"]]
    # the same views, head and order: the first epoch agrees to its printed digits; the views are
    # resampled images, so rounding grows faster than in the MSE recipe (measured: 3.938 vs 3.945 after 2)
    assert len(losses) == 2 and abs(losses[0] - app[0]) / app[0] < FIRST_EPOCH_TOLERANCE, (losses, app)
    assert abs(losses[1] - app[1]) / app[1] < 0.01, (losses, app)
    assert "Autoencoder epoch" not in out.stdout  # no reconstruction is trained
