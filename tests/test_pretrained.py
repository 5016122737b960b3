"""The shipped runs: each loads through the public API, and the default one reproduces its
stored test accuracy on the full shared test split."""

import pytest

from cae.data import SAMPLE_FILE, load_dataset
from cae.experiment import evaluate_run
from cae.runs import PRETRAINED_DIR, list_runs, load_run, pretrained_index
from tests.conftest import shared_cifar

SHIPPED = sorted(p for p in PRETRAINED_DIR.iterdir() if p.is_dir())


def test_the_index_names_a_default_run_and_every_shipped_run():
    index = pretrained_index(PRETRAINED_DIR)
    assert index["default"] in {p.name for p in SHIPPED}
    assert set(index["runs"]) == {p.name for p in SHIPPED}
    assert all(meta["title"] and meta["description"] for meta in index["runs"].values())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_run_loads_through_the_public_api(path):
    run = load_run(path)
    assert run.classifier is not None and not run.classifier.training
    assert {"initial", "autoencoder", "finetuned"} <= set(run.kernels)
    assert run.metrics["classifier"] and run.metrics["dataset"]["test_size"] == 10_000
    assert run.metrics["dataset"]["name"].startswith("image folder cifar10-jpeg")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_run_carries_the_kernels_of_every_epoch_and_the_codes_knn_curve(path):
    run = load_run(path)
    for phase, rows in [
        ("autoencoder", run.metrics["autoencoder"]),
        ("finetuned", run.metrics["classifier"]),
        ("scratch", run.metrics["scratch"]["classifier"]),
    ]:
        if rows:
            assert tuple(run.kernels[f"{phase}_epochs"].shape) == (len(rows), 64, 3, 3, 3)
    if run.metrics["autoencoder"]:  # a run that trained its own autoencoder (not one that reuses another's)
        assert all(0 < row["knn_acc"] <= 100 for row in run.metrics["autoencoder"])
        assert run.metrics["representation"]["pixels_knn"] > 0


def test_shipped_runs_are_listed_first_and_marked_pretrained(tmp_path):
    infos = list_runs(tmp_path)
    assert [i.path for i in infos[: len(SHIPPED)]] and all(i.pretrained for i in infos[: len(SHIPPED)])


def test_pretrained_folder_stays_small():
    size = sum(f.stat().st_size for f in PRETRAINED_DIR.rglob("*") if f.is_file())
    assert size <= 60 * 1024 * 1024


def test_the_sample_records_which_images_it_holds():
    listing = (SAMPLE_FILE.parent / "cifar10-sample-files.txt").read_text().splitlines()
    files = [line for line in listing if not line.startswith("#")]
    assert len(files) == 1200 and len(set(files)) == 1200
    assert sum(f.startswith("train/") for f in files) == 1000


@pytest.mark.skipif(
    shared_cifar() is None,
    reason="the full CIFAR-10 copy (../shared/datasets/cifar10-jpeg or $CAE_TEST_DATA) is not on this machine",
)
def test_the_default_run_reproduces_its_test_accuracy_on_the_full_test_split():
    run = load_run(PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"])
    dataset = load_dataset(shared_cifar())
    assert dataset.fingerprint == run.metrics["dataset"]["fingerprint"]  # the same images, found by content
    fresh = evaluate_run(run, dataset)
    assert fresh["test_acc"] == pytest.approx(run.metrics["classifier"][-1]["test_acc"], abs=0.1)
    assert fresh["test_mse"] == pytest.approx(run.metrics["autoencoder"][-1]["test_mse"], rel=0.01)
