"""One list of settings: each Config field's Setting (cae/config.py) is where its range, help,
command-line option, words and widget are written; validation, the command line, the exported
command and script, a run's description and the Train page are made from it."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from cae.__main__ import build_parser, config_from_args
from cae.config import SETTINGS, Config, ConfigError
from cae.export import SCRIPT_FIELDS, reproduce_command
from cae.words import SAID_OTHERWISE, run_differences

NOT_SAID = {"scratch_baseline", "test_limit", "precision", "device"}  # a run's title leaves these out


def test_every_field_of_a_config_has_its_setting_in_order():
    assert list(SETTINGS) == [f.name for f in dataclasses.fields(Config)]
    for name, spec in SETTINGS.items():
        assert spec.help and spec.kind in ("int", "float", "str", "bool"), name
        assert spec.default == getattr(Config(), name)


@pytest.mark.parametrize("name", [n for n, s in SETTINGS.items() if s.kind in ("int", "float")])
def test_a_number_is_accepted_at_its_limits_and_refused_just_beyond_with_its_sentence(name):
    spec = SETTINGS[name]
    step = 1 if spec.kind == "int" else 1e-9
    if not spec.above:
        Config(**{name: spec.low})
    with pytest.raises(ConfigError, match=rf"^{name}\b.* must be .*, got "):
        Config(**{name: spec.low if spec.above else spec.low - step})
    if spec.high is not None:
        Config(**{name: spec.high})
        with pytest.raises(ConfigError, match=rf"^{name}\b"):
            Config(**{name: spec.high + step})


def test_choices_and_switches_are_refused_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^upsample must be one of bilinear, nearest, transpose, got 'x'\.$"):
        Config(upsample="x")
    with pytest.raises(ConfigError, match=r"^flip must be true or false\.$"):
        Config(flip=1)
    with pytest.raises(ConfigError, match=r"^label_count must be empty or a whole number of at least 1, got 0\.$"):
        Config(label_count=0)


def every_setting_changed(contrastive: bool = False) -> Config:
    """A request with every setting the command line takes away from its default; `contrastive`:
    the objective instead of the reconstruction options it excludes."""
    cfg = Config(
        latent_dim=64,
        leak=0.2,
        upsample="nearest",
        ae_epochs=3,
        batch_size=500,
        lr=2e-3,
        clf_epochs=2,
        clf_lr=5e-4,
        clf_batch_size=100,
        label_fraction=0.5,
        label_count=300,
        clf_steps=40,
        clf_seed=2,
        scratch_seed=3,
        freeze_encoder=True,
        scratch_baseline=False,
        limit=5000,
        test_limit=1000,
        flip=True,
        noise=0.1,
        mask=0.25,
        augment=True,
        precision="fp32",
        seed=7,
        device="cpu",
    )
    return cfg.replace(noise=0.0, mask=0.0, augment=False, objective="contrastive") if contrastive else cfg


@pytest.mark.parametrize("contrastive", [False, True])
def test_the_exported_command_asks_for_exactly_the_run_it_came_from(contrastive):
    cfg = every_setting_changed(contrastive)
    excluded = {"noise", "mask", "augment"} if contrastive else {"objective"}
    changed = {n for n in SETTINGS if getattr(cfg, n) != SETTINGS[n].default}
    assert changed == set(SETTINGS) - {"encoder_from"} - excluded
    run = SimpleNamespace(config=cfg, metrics={"dataset": {"origin": "sample", "name": "sample"}})
    command = reproduce_command(run).split()
    assert config_from_args(build_parser().parse_args(command[3:])) == cfg


def test_the_command_line_with_nothing_chosen_is_the_lecture():
    assert config_from_args(build_parser().parse_args(["train"])) == Config()


def test_the_script_lists_every_setting_but_the_transfer_the_device_and_the_requested_precision():
    assert set(SCRIPT_FIELDS) == set(SETTINGS) - {"encoder_from", "device", "precision"}


def test_a_run_is_described_by_every_setting_it_changed():
    metrics = {"config": every_setting_changed().to_dict(), "dataset": {"train_size": 50_000}}
    said = run_differences(metrics)
    other = {"config": every_setting_changed(contrastive=True).to_dict(), "dataset": {"train_size": 50_000}}
    assert "contrastive pretraining" in run_differences(other)
    for name, spec in SETTINGS.items():
        if name == "objective":
            continue  # said above: it excludes the reconstruction options
        if name in NOT_SAID or name == "label_fraction":  # a label count overrides the fraction
            continue
        if spec.words:
            assert spec.words.format(metrics["config"][name]) in said, name
        else:
            assert name in SAID_OTHERWISE, f"{name} has no words: a run that changes it would not say so"
    assert said[0] == "latent 64" and "seed 7" in said and "masking 25% of patches" in said


def test_the_train_page_shows_a_widget_for_every_setting_with_a_form():
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    keys = {
        w.key
        for kind in ("slider", "select_slider", "radio", "selectbox", "number_input", "checkbox")
        for w in getattr(at, kind)
    }
    assert {n for n, s in SETTINGS.items() if s.form} <= keys
