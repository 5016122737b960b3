"""The autoencoder's pretraining options (cae/objectives.py): each changes the input as stated and
keeps the clean image as the target; a run without them is the run it always was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cae.config import Config, ConfigError, autoencoder_key, run_key
from cae.objectives import PATCH, hidden_patches, pretext_for, random_crops, with_mask, with_noise
from cae.sweeps import OBJECTIVE_NAMES, budget_lines, load_label_budget


def batch(n: int = 8, value: float | None = None) -> torch.Tensor:
    if value is not None:
        return torch.full((n, 3, 32, 32), value)
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_a_masked_input_has_the_stated_share_of_black_patches_and_nothing_else_changes(fraction):
    x = batch(value=0.6)
    masked = with_mask(x, fraction, torch.Generator().manual_seed(1))
    patches = masked.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # (B,3,8,8,4,4)
    black = (patches == 0).flatten(-2).all(-1).all(1)  # (B,8,8): every pixel of every channel is 0
    assert black.flatten(1).sum(1).tolist() == [round(fraction * 64)] * len(x)
    assert torch.equal(
        masked[~black.repeat_interleave(PATCH, 1).repeat_interleave(PATCH, 2)[:, None].expand_as(x)],
        x[~black.repeat_interleave(PATCH, 1).repeat_interleave(PATCH, 2)[:, None].expand_as(x)],
    )


def test_each_image_hides_its_own_patches():
    hidden = hidden_patches(64, 0.5, torch.Generator().manual_seed(2))
    assert len({tuple(h.flatten().tolist()) for h in hidden}) > 60


def test_noise_has_the_stated_standard_deviation_and_stays_in_the_pixel_range():
    x = batch(n=64, value=0.5)  # mid-grey: clipping at 0 and 1 is 2.5 std away for std 0.2
    noisy = with_noise(x, 0.2, torch.Generator().manual_seed(3))
    assert float((noisy - x).std()) == pytest.approx(0.2, rel=0.02)
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1


def test_a_crop_is_a_32_pixel_window_of_the_image_padded_by_4():
    x = batch(n=16)
    crops = random_crops(x, torch.Generator().manual_seed(4))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for image, crop in zip(padded, crops):
        windows = image.unfold(1, 32, 1).unfold(2, 32, 1)  # (3, 9, 9, 32, 32)
        assert any(torch.equal(windows[:, i, j], crop) for i in range(9) for j in range(9))
    assert not torch.equal(crops, x)  # some image moved (16 images, 81 offsets each)


def test_the_target_is_the_clean_image_and_the_input_is_corrupted():
    x = batch()
    inputs, target = pretext_for(0.2, 0.5, False, seed=0)(x)
    assert torch.equal(target, x) and not torch.equal(inputs, x)
    inputs, target = pretext_for(0.0, 0.0, True, seed=0)(x)
    assert torch.equal(inputs, target)  # crops change input and target alike
    assert pretext_for(0.0, 0.0, False, seed=0) is None  # the lecture's recipe: nothing drawn


def test_the_options_draw_from_their_own_seeded_generator():
    x = batch()
    first = pretext_for(0.1, 0.25, True, seed=3)(x)
    again = pretext_for(0.1, 0.25, True, seed=3)(x)
    other = pretext_for(0.1, 0.25, True, seed=4)(x)
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and not torch.equal(first[0], other[0])


def test_keys_change_only_when_an_option_is_used():
    plain = Config()
    for same in (Config(noise=0.0), Config(mask=0.0), Config(augment=False)):
        assert autoencoder_key(same, "bf16", "f") == autoencoder_key(plain, "bf16", "f")
        assert run_key(same, "bf16", "f") == run_key(plain, "bf16", "f")
    keys = {autoencoder_key(c, "bf16", "f") for c in (plain, Config(noise=0.1), Config(mask=0.5), Config(augment=True))}
    assert len(keys) == 4


@pytest.mark.parametrize(
    "field, value", [("noise", -0.1), ("noise", 1.5), ("mask", 0.95), ("mask", True), ("augment", 1)]
)
def test_out_of_range_options_are_named(field, value):
    with pytest.raises(ConfigError, match=field):
        Config(**{field: value})


def test_every_shipped_run_keeps_its_keys():
    """The options entered the keys only where they are used: every shipped run's stored keys are
    what its settings give today."""
    import json

    from cae.runs import PRETRAINED_DIR

    for metrics_file in sorted(PRETRAINED_DIR.glob("*/metrics.json")):
        m = json.loads(metrics_file.read_text())
        cfg, fingerprint = Config.from_dict(m["config"]), m["dataset"]["fingerprint"]
        assert run_key(cfg, m["precision"], fingerprint) == m["run_key"], metrics_file.parent.name
        if not cfg.encoder_from:
            assert autoencoder_key(cfg, m["precision"], fingerprint) == m["autoencoder_key"], metrics_file.parent.name


def test_a_run_title_names_the_options_it_used():
    from cae.words import run_title

    base = {"config": Config().to_dict(), "dataset": {"name": "CIFAR-10", "train_size": 50_000}}
    assert not any(word in run_title(base) for word in ("denoising", "masking", "crops"))
    used = {**base, "config": Config(noise=0.2, mask=0.5, augment=True).to_dict()}
    title = run_title(used)
    assert title == "Denoising (noise 0.2), masking 50% of patches, crops"


# --- the shipped comparison, as the Latent space page shows it ------------------------------------


def fake_option(knn_last: float, fine: list[float], scratch: list[float], frozen: float) -> dict:
    """An option entry as bench/objectives.py writes it: 1,000 labels with one value per seed."""
    points = [
        {"budget": 1000, "seed": s, "finetuned": f, "scratch": c, "frozen": frozen}
        for s, (f, c) in enumerate(zip(fine, scratch))
    ]
    points += [{"budget": 10000, "seed": s, "finetuned": 50.0, "scratch": 50.0, "frozen": frozen + 10} for s in (0, 1)]
    return {
        "settings": {},
        "ae_epochs": 2,
        "test_mse": [0.05, 0.04],
        "knn_curve": [20.0, knn_last],
        "pixels_knn": 27.5,
        "initial_knn": 22.0,
        "probe": 30.0,
        "points": points,
    }


def test_the_sentence_names_an_objective_ahead_only_beyond_the_classifier_seeds_spread():
    from cae.budget_report import objectives_sentence
    from cae.sweeps import OBJECTIVE_NAMES

    apart = {
        "plain": fake_option(20.4, [37, 38, 39], [36, 37, 38], 21.0),
        "mask-0.5": fake_option(31.0, [44, 45, 46], [36, 37, 38], 35.0),
    }
    said = objectives_sentence(apart, OBJECTIVE_NAMES)
    # 31.0% vs 20.4% on 1,000 test images: far beyond two standard errors of the difference (3.9 points)
    assert said.startswith("By k-NN the best code is masking 50% (31.0%), beyond the noise of every other")
    # its reference points, by the same rule: 31.0 vs 27.5 is within noise, 31.0 vs 22.0 is not
    assert "about as good as raw pixels (27.5%) and better than the untrained encoder (22.0%)" in said
    assert "beyond the seeds' spread at 1,000 labels only for masking 50% (+8.0 points)" in said
    assert "the frozen encoders reach 31.0–45.0% at 10,000 labels" in said  # a range: no "best" named
    touching = {
        "plain": fake_option(20.4, [37, 38, 39], [36, 37, 38], 21.0),
        "mask-0.5": fake_option(21.0, [38, 39, 40], [36, 37, 38], 22.0),
    }  # 38 is in both ranges
    assert "no objective puts fine-tuning beyond the seeds' spread" in objectives_sentence(touching, OBJECTIVE_NAMES)


def shipped_comparison(tmp_path: Path, monkeypatch, fingerprint: str | None = None) -> Path:
    """A copy of the shipped runs whose objectives comparison is a made-up one (plain and denoising)."""
    import json

    import numpy as np

    from cae.runs import PRETRAINED_DIR

    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    for entry in PRETRAINED_DIR.iterdir():  # the shipped runs as they are, plus a comparison of our own
        if not entry.name.startswith("objectives"):  # never a link the writes below would follow
            (shipped / entry.name).symlink_to(entry)
    options = {
        "plain": fake_option(20.4, [37, 38, 39], [36, 37, 38], 21.0),
        "noise-0.1": fake_option(24.0, [38, 39, 40], [36, 37, 38], 25.0),
    }
    dataset = {"name": "CIFAR-10 (JPEG copy)", "classes": [str(i) for i in range(10)]}
    if fingerprint:
        dataset["fingerprint"] = fingerprint
    confirmation = {"mask-0.75": {**fake_option(24.0, [38, 39, 40], [36, 37, 38], 31.0), "ae_epochs": 30}}
    (shipped / "objectives.json").write_text(
        json.dumps({"dataset": dataset, "protocol": "the protocol.", "options": options, "confirmation": confirmation})
    )
    np.savez(shipped / "objectives_pictures.npz", **{n: np.zeros((4, 6, 3, 32, 32), np.uint8) for n in options})
    monkeypatch.setenv("CAE_PRETRAINED", str(shipped))
    return shipped


def latent_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=600)
    at.run()
    return at.switch_page("app_pages/latent.py").run()


def chart_titles(at) -> list[str]:
    import json

    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_the_latent_page_shows_the_shipped_comparison(tmp_path, monkeypatch):
    shipped_comparison(tmp_path, monkeypatch)
    at = latent_page()
    assert not at.exception
    assert any(h.value == "What makes the code useful?" for h in at.header)
    assert any(m.value.startswith("By k-NN ") and "raw pixels" in m.value for m in at.markdown)
    assert at.selectbox(key="objective_pictures").options == ["plain (the lecture)", "denoising, noise 0.1"]
    assert "What pretraining asks for, and what the code is worth" in chart_titles(at)
    assert any(c.value.startswith("Your own lines join these: train an objective") for c in at.caption)
    long_run = budget_lines(
        load_label_budget()["sources"]["z1024-bilinear-ae30-clf30-111e759f24b1"]["points"],
        load_label_budget()["precision"],
    )["frozen"][10000]
    assert any(
        m.value.startswith(
            "Trained for 30 autoencoder epochs, masking 75%'s fine-tuned classifier is +2.0 points from scratch at "
            f"1,000 labels (within the seeds' spread), and its frozen encoder reaches 41.0% at 10,000 labels, above "
            f"{long_run['mean']:.1f}% for the plain Long run (30 + 30 epochs)"
        )
        for m in at.markdown
    )


def test_a_learners_sweep_on_the_same_images_is_drawn_beside_the_shipped_lines_and_one_on_others_is_not(
    tmp_path, monkeypatch, small_dataset
):
    import json

    from cae import budget
    from cae.experiment import train_or_load
    from cae.runs import runs_dir

    shipped_comparison(tmp_path, monkeypatch, fingerprint=small_dataset.fingerprint)
    tiny = Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=0, scratch_baseline=False, mask=0.5)
    own = train_or_load(tiny, small_dataset, runs_dir()).path.name
    points = [{"budget": 20, "seed": s, "finetuned": 30.0, "scratch": 20.0 + s, "frozen": 25.0} for s in (0, 1)]
    for fingerprint in (small_dataset.fingerprint, "f" * 64):  # the same images, and other ones
        file = budget.results_file(runs_dir(), own, fingerprint)
        file.parent.mkdir(parents=True)
        file.write_text(json.dumps({"source": own, "points": points}))
    at = latent_page()
    assert not at.exception
    chart = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"]["title"]["text"]
        == "What pretraining asks for, and what the code is worth"
    )
    yours = [t for t in chart["data"] if t["name"].startswith("yours: ")]
    assert len(yours) == 2 and "masking 50% of patches" in yours[0]["name"]  # one sweep: its gap and its frozen line
    assert yours[0]["x"] == [20] and yours[0]["y"] == [pytest.approx(9.5)]
    assert any(
        c.value.startswith("Drawn beside the shipped lines: 1 label-budget sweep of your own") for c in at.caption
    )


def seeded_option(frozen: list[float], fine: list[float], scratch: list[float], pretrain_seeds: int = 1) -> dict:
    """An option whose 10,000-label frozen values and 1,000-label fine-tuned and scratch values are
    given per seed; the seeds are spread over `pretrain_seeds` autoencoders."""
    points = []
    for s, (z, f, c) in enumerate(zip(frozen, fine, scratch)):
        tag = {"pretrain_seed": s % pretrain_seeds}
        points.append({"budget": 10000, "seed": s, "finetuned": 50.0, "scratch": 50.0, "frozen": z, **tag})
        points.append({"budget": 1000, "seed": s, "finetuned": f, "scratch": c, "frozen": 20.0, **tag})
    return {"settings": {}, "ae_epochs": 8, "test_mse": [], "knn_curve": [25.0], "probe": 30.0, "points": points}


def test_the_contrast_says_it_pays_only_when_the_frozen_ranges_part():
    from cae.budget_report import contrast_sentence

    label = OBJECTIVE_NAMES.get
    mask = seeded_option([33, 34, 35], [40, 41, 42], [39, 40, 41])
    apart = {"mask-0.75": mask, "contrastive": seeded_option([35.1, 36, 37], [46, 47, 48], [39, 40, 41], 2)}
    said = contrast_sentence(apart, label)
    assert (
        "Here that pays: its frozen encoder (8 pretraining epochs) reaches 36.0% at 10,000 labels, above 34.0% for "
        "masking 75% (8 epochs)" in said
    )
    assert (
        "the classifier is +7.0 points from scratch at 1,000 labels (ahead of the seeds' spread), against +1.0" in said
    )
    touching = {"mask-0.75": mask, "contrastive": seeded_option([35, 36, 37], [41, 42, 43], [39, 40, 41], 2)}
    said = contrast_sentence(touching, label)  # 35 is the top of one range and the bottom of the other
    assert "does not pay beyond the noise" in said and "within the seeds' spread of 34.0%" in said
    assert contrast_sentence({"mask-0.75": mask}, label) is None


def test_the_caveat_names_the_objectives_whose_ranges_cover_pretraining_too():
    from cae.budget_report import seeds_caveat

    label = OBJECTIVE_NAMES.get
    one = {"plain": seeded_option([30], [40], [39])}
    assert (
        seeds_caveat(one, label)
        == "one autoencoder per objective: the label-budget ranges cover the classifier seeds only"
    )
    both = {**one, "contrastive": seeded_option([40, 41], [45, 46], [39, 40], pretrain_seeds=2)}
    assert "for contrastive also 2 pretraining seeds" in seeds_caveat(both, label)


def test_lecture_modes_answer_says_the_contrast_in_few_words():
    from cae.budget_report import objectives_answer

    options = {
        "mask-0.75": seeded_option([33, 34, 35], [40, 41, 42], [39, 40, 41]),
        "contrastive": seeded_option([51, 52, 53, 54], [46, 47, 48, 49], [39, 40, 41, 40], pretrain_seeds=2),
    }
    said = objectives_answer(options, OBJECTIVE_NAMES)
    assert said.startswith(
        "Fine-tuning beats scratch beyond the seeds' spread at 1,000 labels only for contrastive (+7.5 points, "
        "over 2 pretraining seeds). Why: rebuilding rewards keeping pixels;"
    )
    assert said.endswith(
        "Here that pays: frozen, its encoder reaches 52.5% at 10,000 labels, above 34.0% for masking 75%."
    )
    assert len(said.split()) < 60  # a projector's answer
