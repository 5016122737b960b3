"""The command line end to end on a tiny slice, and exit status 2 with one line for bad arguments."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def cae(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "cae", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )


def test_train_then_evaluate(small_folder, tmp_path):
    runs = tmp_path / "runs"
    args = [
        "train",
        "--data",
        str(small_folder),
        "--limit",
        "200",
        "--test-limit",
        "50",
        "--ae-epochs",
        "2",
        "--clf-epochs",
        "1",
        "--batch-size",
        "100",
        "--latent-dim",
        "64",
        "--runs",
        str(runs),
    ]
    done = cae(*args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    run_dir = Path(lines[-1])
    assert run_dir.parent == runs and (run_dir / "metrics.json").exists()
    assert lines[-2].startswith("Total time:")
    assert any(line.startswith("Autoencoder Iteration: 2/2 ; Training Loss: ") for line in lines)
    assert any("Fine-tuning Iteration: 1/1" in line and "Test accuracy" in line for line in lines)

    again = cae(*args)
    assert "reusing it" in again.stdout and again.stdout.strip().splitlines()[-1] == str(run_dir)

    evaluated = cae("evaluate", str(run_dir), "--data", str(small_folder), "--test-limit", "50")
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    stored = json.loads((run_dir / "metrics.json").read_text())
    assert scores["test_acc"] == pytest.approx(stored["classifier"][-1]["test_acc"], abs=0.01)
    assert scores["test_mse"] == pytest.approx(stored["autoencoder"][-1]["test_mse"], rel=1e-3)
    assert set(scores["per_class_acc"]) == set(stored["dataset"]["classes"])


def test_autoencoder_only_and_evaluate_reports_null_accuracy(tmp_path):
    done = cae(
        "train",
        "--data",
        "sample",
        "--limit",
        "100",
        "--ae-epochs",
        "1",
        "--clf-epochs",
        "0",
        "--latent-dim",
        "16",
        "--batch-size",
        "50",
        "--runs",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads(cae("evaluate", done.stdout.strip().splitlines()[-1], "--data", "sample").stdout)
    assert scores["test_acc"] is None and scores["per_class_acc"] is None and scores["test_mse"] > 0


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--latent-dim", "0"], "latent_dim"),
        (["--leak", "-0.1"], "leak"),
        (["--upsample", "cubic"], "invalid choice"),
        (["--label-fraction", "0"], "label_fraction"),
        (["--label-fraction", "1.5"], "label_fraction"),
        (["--data", "/no/such/folder"], "does not exist"),
        (["--batch-size", "0"], "batch_size"),
        (["--ae-epochs", "-1"], "ae_epochs"),
        (["--lr", "abc"], "invalid float"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, reason, tmp_path):
    done = cae("train", "--runs", str(tmp_path), *args)
    assert done.returncode == 2
    errors = [line for line in done.stderr.strip().splitlines() if line.startswith("cae: error")]
    assert len(errors) == 1 and reason in errors[0]
    assert "Traceback" not in done.stderr


def test_a_folder_it_may_not_read_is_one_sentence(tmp_path):
    done = cae("train", "--runs", str(tmp_path), "--data", "/proc", "--ae-epochs", "1", "--clf-epochs", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cae: error: Cannot read /proc/" in done.stderr and "permission denied" in done.stderr


def test_a_cifar_batch_of_another_shape_is_one_sentence(tmp_path):
    import pickle

    import numpy as np

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}, protocol=2))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((4, 1000), dtype=np.uint8), b"labels": [0, 1, 0, 1]}  # 1,000 bytes, not 3,072
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    done = cae("train", "--runs", str(tmp_path / "runs"), "--data", str(tmp_path / "data"), "--ae-epochs", "1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "does not hold CIFAR-10's batches" in done.stderr


def test_evaluate_a_folder_that_is_not_a_run(tmp_path):
    done = cae("evaluate", str(tmp_path), "--data", "sample")
    assert done.returncode == 2 and "metrics.json is missing" in done.stderr


def test_a_data_path_longer_than_any_folders_is_one_sentence(tmp_path):
    done = cae("train", "--runs", str(tmp_path / "runs"), "--data", "a" * 5000)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "The data path is 5,000 characters long" in done.stderr


def test_a_runs_folder_that_cannot_be_written_is_refused_before_any_training(tmp_path):
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    for runs in ("/dev/null", str(taken)):
        done = cae("train", "--runs", runs, "--data", "sample", "--ae-epochs", "1", "--clf-epochs", "0")
        assert done.returncode == 2 and "Cannot write runs to" in done.stderr, done.stderr
        assert "Autoencoder" not in done.stdout  # not one epoch was trained
