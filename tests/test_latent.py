"""What the code learned, measured: codes, k-NN accuracy against a hand count, a linear probe,
the 2-D map, neighbours, interpolation, random codes, out-of-distribution probes, dead units."""

from __future__ import annotations

import pytest
import torch

from cae import latent, report, sweeps, tasks
from cae.config import Config
from cae.data import cache_dir, load_dataset
from cae.experiment import train_or_load
from cae.model import ConvAutoencoder, seeded
from cae.runs import PRETRAINED_DIR, list_runs, load_run, pretrained_index, runs_dir


@pytest.fixture(scope="module")
def shipped():
    return load_run(PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"])


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def test_codes_are_the_encoders_output_in_batches(shipped, sample):
    images = torch.cat([sample.train.images, sample.test.images])  # 1,200: more than one batch
    z = latent.codes(shipped.autoencoder, images)
    assert z.shape == (1200, 1024) and z.dtype == torch.float32
    direct = shipped.autoencoder.encode(images[:3].float() / 255)
    assert torch.allclose(z[:3], direct, atol=1e-5)


def test_knn_accuracy_against_a_hand_count():
    train = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    test = torch.tensor([[1.0, 0.05], [0.05, 1.0], [1.0, 0.0]])
    assert latent.knn_accuracy(train, labels, test, torch.tensor([0, 1, 1]), k=1) == pytest.approx(200 / 3)
    assert latent.knn_accuracy(train, labels, test, torch.tensor([0, 1, 0]), k=3) == 100.0


def test_a_linear_probe_separates_separable_features_and_not_random_labels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g)
    y = (x[:, 0] > 0).long()
    assert latent.linear_probe(x[:300], y[:300], x[300:], y[300:]) >= 95
    noise = torch.randint(0, 10, (400,), generator=g)
    assert latent.linear_probe(x[:300], noise[:300], x[300:], noise[300:]) < 30


def test_the_map_places_new_points_with_the_same_projection():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(200, 16, generator=g) * torch.linspace(5, 0.1, 16)
    project = latent.Projection.fit(features)
    assert project(features).shape == (200, 2)
    assert torch.allclose(project(features[:5]), project(features)[:5])
    assert project(features).var(0)[0] > project(features).var(0)[1]  # the first axis spreads most


def test_neighbours_are_the_most_similar_items_in_order():
    pool = torch.eye(4) + 0.01
    queries = torch.stack([pool[2], pool[0] + 0.5 * pool[3]])
    found = latent.most_similar(queries, pool, k=2)
    assert found.shape == (2, 2) and found[0, 0] == 2 and found[1].tolist() == [0, 3]


def test_interpolation_starts_and_ends_at_the_two_images(shipped, sample):
    a, b = sample.test.images[0], sample.test.images[1]
    decoded, fade = latent.interpolate(shipped.autoencoder, a, b, steps=5)
    assert decoded.shape == fade.shape == (5, 3, 32, 32)
    assert torch.allclose(fade[0], a.float() / 255) and torch.allclose(fade[-1], b.float() / 255)
    own = shipped.autoencoder(torch.stack([a, b]).float() / 255).clamp(0, 1)
    assert torch.allclose(decoded[0], own[0], atol=1e-4) and torch.allclose(decoded[-1], own[1], atol=1e-4)


def test_random_codes_decode_to_images(shipped, sample):
    z = latent.codes(shipped.autoencoder, sample.train.images[:500])
    pictures = latent.decode_random_codes(shipped.autoencoder, z, n=6)
    assert pictures.shape == (6, 3, 32, 32) and 0 <= pictures.min() and pictures.max() <= 1


def test_noise_reconstructs_worse_than_a_typical_test_image(shipped, sample):
    probes = latent.ood_probes(sample.test.images[0])
    assert set(probes) == {"noise", "flat colour", "checkerboard", "gradient", "inverted"}
    assert all(p.shape == (3, 32, 32) and p.dtype == torch.uint8 for p in probes.values())
    typical = latent.reconstruction_errors(shipped.autoencoder, sample.test.images).median()
    noise = latent.reconstruction_errors(shipped.autoencoder, probes["noise"][None])[0]
    assert noise > 2 * typical  # measured: 0.082 vs a median of 0.029


def test_a_unit_that_never_fires_is_dead(sample):
    model = ConvAutoencoder.from_config(Config(latent_dim=16, leak=0.0), seeded(0))
    images = sample.test.images
    before = latent.dead_units(model, images)
    assert set(before) == {"conv_encoder.1", "conv_encoder.3", "conv_encoder.5", "conv_encoder.7", "fc_encoder.1"}
    with torch.no_grad():
        model.conv_encoder[0].bias[:8] = -100.0  # these 8 channels can never be positive now
    after = latent.dead_units(model, images)
    assert after["conv_encoder.1"] >= 8 / 64 and after["conv_encoder.1"] > before["conv_encoder.1"]


def test_the_representation_subsets_are_fixed_and_balanced(sample):
    a = latent.representation_subsets(sample.train.labels, sample.test.labels)
    b = latent.representation_subsets(sample.train.labels, sample.test.labels)
    assert torch.equal(a.train, b.train) and len(a.train) == 1000 and len(a.test) == 200
    assert torch.bincount(sample.train.labels[a.train]).tolist() == [100] * 10


# --- what the Latent space page draws ---------------------------------------------------------


def test_the_map_holds_class_balanced_test_images_and_their_true_neighbours(shipped, sample):
    probe = tasks.representation_probe(shipped, sample)  # other data than the run's: the whole splits
    assert len(probe.train_index) == 1000 and len(probe.test_index) == 200
    view = latent.explore(shipped.autoencoder, sample, probe)
    n = len(view["index"])
    assert n == 200 and view["xy"].shape == (n, 2) and view["code_neighbours"].shape == (n, latent.NEIGHBOURS)
    assert torch.bincount(view["labels"]).tolist() == [20] * 10
    assert torch.equal(view["labels"], sample.test.labels[view["index"]])
    assert 0 < view["explained"] <= 1
    # map point 7's code neighbours are the 8 training images whose codes are most similar to its code
    pool = latent.codes(shipped.autoencoder, sample.train.images)
    mine = latent.codes(shipped.autoencoder, sample.test.images[view["index"][7]][None])
    by_hand = (torch.nn.functional.normalize(pool, dim=1) @ torch.nn.functional.normalize(mine, dim=1).T).flatten()
    assert set(view["code_neighbours"][7].tolist()) == set(by_hand.topk(8).indices.tolist())
    # a new image is placed with the stored projection: a map image lands on its own point
    again = (mine - view["mean"]) @ view["axes"]
    assert torch.allclose(again[0], view["xy"][7], atol=1e-3)
    assert view["random"].shape == (latent.RANDOM_CODES, 3, 32, 32) and view["random"].dtype == torch.uint8
    assert set(view["activity"]) == set(latent.ENCODER_LAYERS)


def test_the_page_measures_the_same_code_accuracy_the_training_curve_recorded(small_dataset):
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=2, clf_epochs=1, precision="fp32", scratch_baseline=False)
    run = load_run(train_or_load(cfg, small_dataset, runs_dir()).path)
    scores = tasks.representation(
        {"run": str(run.path), "origin": small_dataset.origin, "fingerprint": small_dataset.fingerprint},
        lambda *_: small_dataset,
    )["scores"]
    recorded = run.metrics["representation"]
    assert scores["pixels"]["knn"] == recorded["pixels_knn"] and scores["initial"]["knn"] == recorded["initial_knn"]
    assert scores["code"]["knn"] == run.metrics["autoencoder"][-1]["knn_acc"]
    assert set(scores) == {"pixels", "initial", "code", "finetuned"}
    assert all(0 <= s["probe"] <= 100 for s in scores.values())


def test_page_results_are_cached_under_the_cache_folder_never_in_the_run(shipped, sample, monkeypatch):
    payload = {"run": str(shipped.path), "origin": "sample", "fingerprint": sample.fingerprint}
    before = sorted(p.name for p in shipped.path.iterdir())
    first = tasks.map_and_neighbours(payload, lambda *_: sample)
    stored = tasks.cache_file("latent_map", shipped, sample.fingerprint)
    assert stored.is_file() and stored.is_relative_to(cache_dir())
    assert sorted(p.name for p in shipped.path.iterdir()) == before

    def not_again(*_):
        raise AssertionError("computed twice")

    monkeypatch.setattr(latent, "explore", not_again)
    again = tasks.map_and_neighbours(payload, lambda *_: sample)
    assert torch.equal(again["xy"], first["xy"]) and torch.equal(again["code_neighbours"], first["code_neighbours"])


def test_a_result_that_cannot_be_stored_is_still_returned(shipped, sample, tmp_path, monkeypatch):
    blocked = tmp_path / "read-only-cache"
    blocked.write_text("a file where the cache folder should be")  # mkdir under it fails for real
    monkeypatch.setenv("CAE_CACHE", str(blocked))
    result = tasks.representation(
        {"run": str(shipped.path), "origin": "sample", "fingerprint": sample.fingerprint}, lambda *_: sample
    )
    assert set(result["scores"]) == {"pixels", "initial", "code", "finetuned"}


# --- the shipped sweeps -----------------------------------------------------------------------


def sweep_row(latent_dim: int, leak: float, seed: int, acc: float, dead: float = 0.0) -> dict:
    return {
        "latent_dim": latent_dim,
        "leak": leak,
        "seed": seed,
        "test_mse": 0.03,
        "knn_curve": [20.0, acc / 2],
        "probe": 30.0,
        "test_acc": acc,
        "activity": {"conv_encoder.1": {"dead": dead, "counts": []}},
    }


def test_sweep_groups_summarise_seeds_and_say_when_differences_are_noise():
    rows = [sweep_row(1024, 0.0, s, a, dead=d) for s, a, d in ((0, 47, 0.1), (1, 48, 0.2), (2, 50, 0.3))]
    rows += [
        sweep_row(1024, 0.1, s, a)
        for s, a in (
            (
                0,
                49,
            ),
            (1, 51),
            (2, 53),
        )
    ]
    groups = sweeps.grouped(rows, "leak")
    assert list(groups) == [0.0, 0.1]
    assert groups[0.0]["test_acc"] == {
        "mean": pytest.approx(145 / 3),
        "low": 47,
        "high": 50,
        "n": 3,
        "values": [47, 48, 50],
    }
    assert groups[0.0]["dead conv_encoder.1"]["high"] == 0.3
    assert sweeps.within_spread(groups, "test_acc")  # 47-50 and 49-53 overlap
    rows[-3:] = [sweep_row(1024, 0.1, s, a) for s, a in ((0, 52), (1, 53), (2, 54))]
    assert not sweeps.within_spread(sweeps.grouped(rows, "leak"), "test_acc")
    assert list(sweeps.grouped(rows, "leak", where={"latent_dim": 16})) == []


def test_the_shipped_sweeps_are_metrics_beside_the_runs_and_never_listed_as_runs():
    shipped_sweeps = sweeps.load_sweeps()
    assert shipped_sweeps is not None
    runs = shipped_sweeps["runs"]
    for leak in (0.0, 0.1, 0.3):
        assert sorted(r["seed"] for r in runs if r["leak"] == leak and r["latent_dim"] == 1024) == [0, 1, 2]
    assert {r["latent_dim"] for r in runs} == {16, 64, 256, 1024, 4096}
    assert all(len(r["knn_curve"]) == r["ae_epochs"] == 5 for r in runs)
    assert not any(i.error for i in list_runs(pretrained=PRETRAINED_DIR))
    # the Lecture preset (seed 0, leak 0.1, 1024) was trained with the sweep's recipe on its data
    preset = load_run(PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"])
    assert sweeps.fits_sweep(preset.metrics, shipped_sweeps)
    row = next(r for r in runs if (r["latent_dim"], r["leak"], r["seed"]) == (1024, 0.1, 0))
    assert row["test_acc"] == pytest.approx(preset.metrics["classifier"][-1]["test_acc"], abs=1.0)


def test_a_run_with_other_settings_does_not_fit_the_sweep():
    shipped_sweeps = sweeps.load_sweeps()
    preset = load_run(PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"]).metrics
    for change in ({"ae_epochs": 30}, {"clf_lr": 2e-3}, {"flip": True}, {"limit": 5000}):
        assert not sweeps.fits_sweep({**preset, "config": {**preset["config"], **change}}, shipped_sweeps), change
    other_data = {**preset, "dataset": {**preset["dataset"], "fingerprint": "0" * 16}}
    assert not sweeps.fits_sweep(other_data, shipped_sweeps)
    assert sweeps.fits_sweep({**preset, "config": {**preset["config"], "latent_dim": 64, "seed": 3}}, shipped_sweeps)


def test_the_leak_sweep_sentences_say_what_is_noise_and_what_is_not():
    leaks = sweeps.grouped(sweeps.load_sweeps()["runs"], "leak", where={"latent_dim": 1024})
    for measure in ("test_acc", "knn"):
        sentence = report.sweep_sentence(leaks, measure, "leak", measure)
        best = max(leaks, key=lambda x: leaks[x][measure]["mean"])
        # the top leak is named only when its seeds' range is above every other leak's
        alone = all(leaks[best][measure]["low"] > leaks[x][measure]["high"] for x in leaks if x != best)
        named = f"{measure[0].upper()}{measure[1:]} is highest at leak {best:g}"
        assert sentence.startswith(named if alone else f"No leak clearly has the highest {measure}: leak {best:g}")
        assert "3 seeds each" in sentence


def test_dead_units_are_named_by_layer():
    quiet = {"conv_encoder.1": {"dead": 0.0}, "fc_encoder.1": {"dead": 0.0}}
    assert "no encoder unit is dead" in report.dead_units_sentence(quiet, latent.ENCODER_LAYERS)
    some = {**quiet, "fc_encoder.1": {"dead": 0.25}}
    assert report.dead_units_sentence(some, latent.ENCODER_LAYERS).startswith(
        "In this run the most dead units are in code (linear units): 25% never fire"
    )
