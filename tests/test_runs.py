"""Runs on disk: a round trip, reuse of a trained autoencoder, clear errors for damaged files, safety."""

import json
import os

import pytest
import torch

import cae.experiment
import cae.train
from cae.config import Config
from cae.experiment import request_keys, train_or_load
from cae.runs import RunError, delete_run, find_run, list_runs, load_run, safe_run_path, save_run, zip_run
from cae.train import run_experiment

TINY = dict(latent_dim=32, batch_size=100, precision="fp32", ae_epochs=1, clf_epochs=1, test_limit=50)


@pytest.fixture
def saved(small_dataset, tmp_path):
    outcome = train_or_load(Config(**TINY), small_dataset, tmp_path)
    return outcome


def test_round_trip(saved):
    run = load_run(saved.path)
    result = saved.result
    assert run.config == Config(**TINY)
    assert run.metrics["autoencoder"] == result.metrics["autoencoder"]
    assert run.metrics["classifier"] == result.metrics["classifier"]
    for k, v in result.autoencoder.state_dict().items():
        assert torch.equal(run.autoencoder.state_dict()[k], v.cpu())
    for k, v in result.classifier.state_dict().items():
        assert torch.equal(run.classifier.state_dict()[k], v.cpu())
    assert set(run.kernels) == {
        "initial",
        "autoencoder",
        "finetuned",
        "scratch",
        "autoencoder_epochs",
        "finetuned_epochs",
        "scratch_epochs",
    }
    assert not run.autoencoder.training and not run.classifier.training


def test_the_first_layer_kernels_are_kept_after_every_epoch_of_every_phase(small_dataset, tmp_path):
    cfg = Config(**{**TINY, "ae_epochs": 3, "clf_epochs": 2})
    run = load_run(train_or_load(cfg, small_dataset, tmp_path).path)
    k = run.kernels
    assert k["autoencoder_epochs"].shape == (3, 64, 3, 3, 3) and k["finetuned_epochs"].shape == (2, 64, 3, 3, 3)
    assert torch.equal(k["autoencoder_epochs"][-1], k["autoencoder"])
    assert torch.equal(k["finetuned_epochs"][-1], k["finetuned"]) and torch.equal(k["scratch_epochs"][-1], k["scratch"])
    assert not torch.equal(k["autoencoder_epochs"][0], k["autoencoder_epochs"][1])  # they move every epoch
    # a run that reuses this autoencoder carries its per-epoch kernels too
    again = load_run(train_or_load(cfg.replace(clf_epochs=1), small_dataset, tmp_path).path)
    assert torch.equal(again.kernels["autoencoder_epochs"], k["autoencoder_epochs"])


def test_metrics_json_has_the_contract_keys(saved):
    m = json.loads((saved.path / "metrics.json").read_text())
    for key in (
        "config",
        "autoencoder",
        "classifier",
        "per_class_acc",
        "confusion",
        "scratch",
        "device",
        "precision",
        "dataset",
    ):
        assert key in m
    assert set(m["config"]) == set(Config().to_dict())
    assert set(m["dataset"]) >= {"name", "fingerprint", "train_size", "test_size", "classes"}
    assert set(m["scratch"]) >= {"classifier", "per_class_acc", "confusion"}
    assert m["classifier"][0].keys() == {"epoch", "train_loss", "test_acc", "seconds"}


def test_the_same_request_finds_the_same_run(saved, small_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(cae.experiment, "run_experiment", lambda *a, **k: pytest.fail("trained again"))
    again = train_or_load(Config(**TINY, device="cpu"), small_dataset, tmp_path)  # device is cosmetic
    assert again.cached and again.path == saved.path


def test_a_classifier_variant_reuses_the_autoencoder(saved, small_dataset, tmp_path, monkeypatch):
    calls = []
    original = cae.train.train_autoencoder
    monkeypatch.setattr(cae.train, "train_autoencoder", lambda *a, **k: calls.append(1) or original(*a, **k))
    variant = train_or_load(Config(**{**TINY, "label_fraction": 0.5, "clf_lr": 5e-4}), small_dataset, tmp_path)
    assert calls == [] and not variant.cached
    assert variant.path != saved.path
    assert variant.result.metrics["autoencoder_source"] == saved.path.name
    assert torch.equal(load_run(variant.path).kernels["autoencoder"], load_run(saved.path).kernels["autoencoder"])
    other_ae = train_or_load(Config(**{**TINY, "lr": 5e-4}), small_dataset, tmp_path)
    assert calls == [1] and other_ae.result.metrics["autoencoder_source"] is None


def test_a_corrupted_weights_file_names_the_file(saved):
    (saved.path / "autoencoder.pt").write_bytes(b"garbage" * 10)
    with pytest.raises(RunError, match="autoencoder.pt is damaged"):
        load_run(saved.path)


def test_a_truncated_metrics_file_names_the_file(saved):
    text = (saved.path / "metrics.json").read_text()
    (saved.path / "metrics.json").write_text(text[: len(text) // 2])
    with pytest.raises(RunError, match="metrics.json is damaged"):
        load_run(saved.path)


def test_weights_that_do_not_fit_the_config(saved):
    m = json.loads((saved.path / "metrics.json").read_text())
    m["config"]["latent_dim"] = 64
    (saved.path / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(RunError, match="does not fit the model"):
        load_run(saved.path)


def test_a_damaged_run_is_listed_with_its_error_and_others_still_load(saved, small_dataset, tmp_path):
    other = train_or_load(Config(**{**TINY, "seed": 1}), small_dataset, tmp_path)
    (saved.path / "metrics.json").write_text("{")
    infos = {i.name: i for i in list_runs(tmp_path, pretrained=None)}
    assert infos[saved.path.name].error and "metrics.json" in infos[saved.path.name].error
    assert infos[other.path.name].error is None
    load_run(other.path)


def test_cancelled_runs_are_never_saved(small_dataset, tmp_path):
    outcome = train_or_load(Config(**TINY), small_dataset, tmp_path, should_stop=lambda: True)
    assert outcome.cancelled and outcome.path is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RunError):
        save_run(outcome.result, tmp_path)


def test_a_half_written_run_is_never_listed(saved, tmp_path):
    partial = tmp_path / f".tmp-{saved.path.name}-123-456"
    partial.mkdir()
    (partial / "metrics.json").write_text("{}")
    assert [i.path for i in list_runs(tmp_path, pretrained=None)] == [saved.path]


def test_an_unwritable_runs_folder_is_a_clear_error(small_dataset, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a runs folder whose parent is a regular file
    result = run_experiment(Config(**TINY), small_dataset)
    with pytest.raises(RunError, match="Cannot write the run"):
        save_run(result, blocker / "runs")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "/abs", ".hidden", "x" * 200, "a\\b"])
def test_run_names_cannot_escape_the_runs_folder(tmp_path, name):
    with pytest.raises(RunError):
        safe_run_path(tmp_path, name)


def test_zip_and_delete(saved):
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(zip_run(saved.path))).namelist()
    assert f"{saved.path.name}/metrics.json" in names
    delete_run(saved.path)
    assert not saved.path.exists()


def test_find_run_uses_the_resolved_precision_and_fingerprint(saved, small_dataset, tmp_path):
    key, _ = request_keys(Config(**TINY), small_dataset)
    assert find_run(key, tmp_path, pretrained=None) == saved.path
    assert find_run("0" * 64, tmp_path, pretrained=None) is None


def test_half_precision_storage_loads_as_float32(small_dataset, tmp_path):
    result = run_experiment(Config(**TINY), small_dataset)
    path = save_run(result, tmp_path, half=True)
    run = load_run(path)
    assert all(p.dtype == torch.float32 for p in run.autoencoder.parameters())
    assert os.path.getsize(path / "autoencoder.pt") < 0.6 * sum(p.numel() * 4 for p in run.autoencoder.parameters())


def test_runs_that_share_an_autoencoder_store_it_once_when_shipped(small_dataset, tmp_path):
    first = train_or_load(Config(**TINY), small_dataset, tmp_path / "runs").path
    second = train_or_load(Config(**{**TINY, "clf_lr": 2e-3}), small_dataset, tmp_path / "runs").path
    shipped = tmp_path / "pretrained"
    from bench.shipping import export_run

    a, b = export_run(first, shipped), export_run(second, shipped)
    assert (a / "autoencoder.pt").exists() and not (b / "autoencoder.pt").exists()
    again = load_run(b)
    for k, v in load_run(a).autoencoder.state_dict().items():
        assert torch.equal(again.autoencoder.state_dict()[k], v)
    assert again.classifier is not None
    delete_run(a)
    with pytest.raises(RunError, match="no run beside it holds its autoencoder"):
        load_run(b)


def test_temporaries_of_dead_processes_are_removed_at_start_and_live_ones_kept(tmp_path):
    """Named with this machine and the writer's pid: a dead writer's go; a live one's stay; another
    machine's (a shared folder) or an old-style name go only once a day old."""
    import os
    import subprocess
    import sys
    import time

    from cae.files import HOST, STALE_AFTER, remove_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    names = {
        "dead": f".tmp-run-{HOST}-{int(dead.stdout)}-1",
        "live": f".tmp-run-{HOST}-{os.getpid()}-2",
        "elsewhere": ".tmp-run-otherhost-123-3",
        "old": ".tmp-run-123-456",
        "done": "z16-finished-run",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
    old = time.time() - STALE_AFTER - 60
    os.utime(tmp_path / names["old"], (old, old))
    assert sorted(remove_temporaries(tmp_path)) == sorted([names["dead"], names["old"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"], names["elsewhere"], names["done"]])
