"""The contrastive objective (cae/contrastive.py): two views of each image, drawn from a generator of
their own, that differ from each other; NT-Xent falls as the encoder learns; no decoder is trained;
and every run without it keeps its key."""

from __future__ import annotations

import math

import pytest
import torch

from cae.config import Config, ConfigError, autoencoder_key, run_key
from cae.contrastive import NO_RECONSTRUCTIONS, crops_and_flips, nt_xent, rebuilds, two_views


def batch(n: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_two_views_are_images_in_the_pixel_range_that_differ_from_each_other_and_from_the_input():
    x = batch()
    v1, v2 = two_views(x, torch.Generator().manual_seed(1))
    assert v1.shape == v2.shape == x.shape
    assert float(v1.min()) >= 0 and float(v1.max()) <= 1
    per_image = (v1 - v2).abs().flatten(1).mean(1)
    assert bool((per_image > 0.01).all())  # every image's two views differ
    assert not torch.equal(v1, x)


def test_the_views_draw_from_their_own_generator_and_leave_the_global_one_alone():
    x = batch()
    state = torch.get_rng_state()
    first = two_views(x, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)
    again = two_views(x, torch.Generator().manual_seed(5))
    other = two_views(x, torch.Generator().manual_seed(6))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_each_image_gets_its_own_crop():
    x = torch.arange(32.0).view(1, 1, 1, 32).expand(64, 3, 32, 32) / 31  # a left-to-right ramp
    crops = crops_and_flips(x, torch.Generator().manual_seed(2))
    left_edges = {round(float(c[0, 16, 0]), 3) for c in crops}
    assert len(left_edges) > 30  # 64 images, each its own place, size and flip


def test_nt_xent_is_low_when_each_view_matches_its_twin_and_high_when_it_matches_nobody():
    twins = torch.eye(8) * 10  # eight orthogonal directions: each pair alike, unlike the others
    matched = nt_xent(twins, twins.clone())
    # each of 16 vectors: its twin at cosine 1, 14 others at 0; logits cosine / 0.5
    assert float(matched) == pytest.approx(math.log(1 + 14 * math.exp(-2)), rel=1e-5)
    assert float(nt_xent(twins, twins.roll(1, 0))) > float(matched) + 1
    assert float(nt_xent(twins, twins, temperature=0.1)) < 0.01  # colder: surer


def test_the_objective_is_refused_beside_the_reconstruction_options():
    for reconstruction in ({"noise": 0.1}, {"mask": 0.25}, {"augment": True}):
        with pytest.raises(ConfigError, match="contrastive objective rebuilds nothing"):
            Config(objective="contrastive", **reconstruction)
    with pytest.raises(ConfigError, match="objective"):
        Config(objective="simsiam")


def test_keys_change_only_when_the_objective_is_used():
    plain = Config()
    assert autoencoder_key(Config(objective="reconstruction"), "bf16", "f") == autoencoder_key(plain, "bf16", "f")
    assert run_key(Config(objective="reconstruction"), "bf16", "f") == run_key(plain, "bf16", "f")
    contrastive = Config(objective="contrastive")
    assert autoencoder_key(contrastive, "bf16", "f") != autoencoder_key(plain, "bf16", "f")
    assert not rebuilds(contrastive.to_dict()) and rebuilds(plain.to_dict()) and rebuilds({})


def test_a_contrastive_run_lowers_its_loss_trains_the_encoder_only_and_saves_a_loadable_run(small_dataset, tmp_path):
    from cae import schema
    from cae.experiment import train_or_load
    from cae.model import ConvAutoencoder, seeded
    from cae.runs import load_run
    from cae.words import epoch_sentence

    cfg = Config(objective="contrastive", ae_epochs=6, batch_size=50, clf_epochs=1, precision="fp32", lr=2e-3)
    outcome = train_or_load(cfg, small_dataset, tmp_path / "runs")
    run = load_run(outcome.path)
    rows = run.metrics["autoencoder"]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    assert all("test_mse" not in r and "knn_acc" in r for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # 300 images, 6 epochs of 6 steps
    assert schema.problem(run.metrics) is None
    assert "contrastive loss (NT-Xent)" in epoch_sentence("autoencoder", rows[-1])
    built = ConvAutoencoder.from_config(cfg, seeded(cfg.seed))
    decoder = dict(run.autoencoder.named_parameters())
    for name, p in built.named_parameters():  # the decoder as built, the encoder moved
        stored = decoder[name].float()
        if name.startswith(("fc_decoder", "conv_decoder")):
            assert torch.allclose(stored, p, atol=1e-3), name
        elif name == "conv_encoder.0.weight":
            assert not torch.allclose(stored, p, atol=1e-3)
    assert run.classifier is not None and run.metrics["classifier"]
    again = train_or_load(cfg, small_dataset, tmp_path / "runs")
    assert again.path == outcome.path  # found, not trained again


def test_the_reconstruction_panels_say_why_a_contrastive_run_has_none():
    assert "never trained" in NO_RECONSTRUCTIONS and "no reconstructions" in NO_RECONSTRUCTIONS


def test_the_command_line_takes_the_objective():
    from cae.__main__ import build_parser

    args = build_parser().parse_args(["train", "--objective", "contrastive"])
    assert args.objective == "contrastive"


def test_the_projection_head_starts_the_same_for_a_seed_with_its_batch_norm_at_one_and_zero():
    from cae.contrastive import projection_head

    a, b = projection_head(16, seed=3), projection_head(16, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    norm = a[1]
    assert torch.equal(norm.weight, torch.ones(512)) and torch.equal(norm.bias, torch.zeros(512))
    assert torch.equal(norm.running_mean, torch.zeros(512)) and torch.equal(norm.running_var, torch.ones(512))
