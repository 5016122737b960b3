"""What the code learned, measured: codes, k-NN accuracy against a hand count, a linear probe,
the 2-D map, neighbours, interpolation, random codes, out-of-distribution probes, dead units."""

from __future__ import annotations

import pytest
import torch

from cae import latent
from cae.config import Config
from cae.data import load_dataset
from cae.model import ConvAutoencoder, seeded
from cae.runs import PRETRAINED_DIR, load_run, pretrained_index


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


def test_nearest_neighbours_leave_the_query_out():
    features = torch.eye(4) + 0.01
    assert latent.nearest(features[2], features, k=1) == [2]
    assert 2 not in latent.nearest(features[2], features, k=3, exclude=2)


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
