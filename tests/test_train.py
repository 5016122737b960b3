"""Training: losses go down, a seed repeats a run, cancel stops within a batch, precision options work."""

import pytest
import torch

from cae.config import Config
from cae.devices import DeviceError, bf16_supported, resolve_device, resolve_precision
from cae.experiment import train_or_load
from cae.train import evaluate_classifier, run_experiment

TINY = dict(latent_dim=64, batch_size=50, precision="fp32", test_limit=100)


def test_autoencoder_loss_goes_down_over_three_epochs(small_dataset):
    result = run_experiment(Config(ae_epochs=3, clf_epochs=0, **TINY), small_dataset)
    mse = [row["train_mse"] for row in result.metrics["autoencoder"]]
    assert len(mse) == 3 and mse[2] < mse[1] < mse[0]
    assert all(
        set(row) == {"epoch", "train_mse", "test_mse", "seconds", "knn_acc"} for row in result.metrics["autoencoder"]
    )


def test_the_codes_k_nn_accuracy_is_recorded_after_every_autoencoder_epoch(small_dataset):
    result = run_experiment(Config(ae_epochs=2, clf_epochs=0, **TINY), small_dataset)
    rep = result.metrics["representation"]
    assert rep["k"] == 10 and rep["metric"] == "cosine" and rep["seed"] == 0
    assert (rep["train_size"], rep["test_size"]) == (300, 100)  # min(5,000, 300) and min(1,000, 100)
    assert 0 <= rep["pixels_knn"] <= 100 and 0 <= rep["initial_knn"] <= 100
    assert all(0 <= row["knn_acc"] <= 100 for row in result.metrics["autoencoder"])


def test_classifier_loss_goes_down_and_records_accuracy(small_dataset):
    result = run_experiment(Config(ae_epochs=1, clf_epochs=3, **TINY), small_dataset)
    rows = result.metrics["classifier"]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(0 <= r["test_acc"] <= 100 for r in rows)
    assert set(result.metrics["per_class_acc"]) == set(small_dataset.classes)
    assert sum(map(sum, result.metrics["confusion"])) == 100
    assert len(result.metrics["scratch"]["classifier"]) == 3


def test_the_same_seed_gives_the_same_run(small_dataset):
    cfg = Config(ae_epochs=2, clf_epochs=1, device="cpu", **TINY)  # bit for bit on the CPU; CUDA: below
    a, b = run_experiment(cfg, small_dataset), run_experiment(cfg, small_dataset)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a.metrics["autoencoder"]) == strip(b.metrics["autoencoder"])
    assert strip(a.metrics["classifier"]) == strip(b.metrics["classifier"])
    for x, y in zip(a.autoencoder.state_dict().values(), b.autoencoder.state_dict().values()):
        assert torch.equal(x, y)
    for x, y in zip(a.classifier.state_dict().values(), b.classifier.state_dict().values()):
        assert torch.equal(x, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (run on the lent GPU machine)")
def test_on_cuda_the_same_seed_gives_the_same_run_up_to_rounding(small_dataset):
    """CUDA sums some gradients in a varying order (the bilinear upsampling's backward pass uses
    atomic adds), so a repeated GPU run agrees closely, not bit for bit."""
    cfg = Config(ae_epochs=2, clf_epochs=1, device="cuda", **TINY)
    a, b = run_experiment(cfg, small_dataset), run_experiment(cfg, small_dataset)
    for phase, loss in (("autoencoder", "train_mse"), ("classifier", "train_loss")):
        assert len(a.metrics[phase]) == len(b.metrics[phase]) > 0
        for x, y in zip(a.metrics[phase], b.metrics[phase]):
            assert x[loss] == pytest.approx(y[loss], rel=1e-3)


def test_a_different_seed_gives_a_different_run(small_dataset):
    a = run_experiment(Config(ae_epochs=1, clf_epochs=0, seed=0, **TINY), small_dataset)
    b = run_experiment(Config(ae_epochs=1, clf_epochs=0, seed=1, **TINY), small_dataset)
    assert not torch.equal(a.kernels["initial"], b.kernels["initial"])


def test_kernel_snapshots_at_every_stage(small_dataset):
    result = run_experiment(Config(ae_epochs=1, clf_epochs=1, **TINY), small_dataset)
    k = result.kernels
    assert set(k) == {
        "initial",
        "autoencoder",
        "finetuned",
        "scratch",
        "autoencoder_epochs",
        "finetuned_epochs",
        "scratch_epochs",
    }  # and after every epoch
    assert all(v.shape == ((1, 64, 3, 3, 3) if name.endswith("_epochs") else (64, 3, 3, 3)) for name, v in k.items())
    assert not torch.equal(k["initial"], k["autoencoder"])
    assert not torch.equal(k["autoencoder"], k["finetuned"])


def test_scratch_baseline_starts_from_the_autoencoders_initial_encoder(small_dataset, monkeypatch):
    import cae.train as train

    starts = []
    original = train.train_classifier
    monkeypatch.setattr(
        train,
        "train_classifier",
        lambda model, *a, **kw: (
            starts.append(model.conv_encoder[0].weight.detach().clone()),
            original(model, *a, **kw),
        )[1],
    )
    result = run_experiment(Config(ae_epochs=1, clf_epochs=1, **TINY), small_dataset)
    assert torch.equal(starts[0].cpu(), result.kernels["autoencoder"])  # fine-tuning starts from the AE
    assert torch.equal(starts[1].cpu(), result.kernels["initial"])  # scratch from the same random init


def test_frozen_encoder_is_a_linear_probe(small_dataset):
    result = run_experiment(
        Config(ae_epochs=1, clf_epochs=2, freeze_encoder=True, scratch_baseline=False, **TINY), small_dataset
    )
    assert torch.equal(result.kernels["autoencoder"], result.kernels["finetuned"])


def test_label_fraction_limits_the_labels_the_classifier_sees(small_dataset):
    seen = []
    result = run_experiment(
        Config(ae_epochs=0, clf_epochs=1, label_fraction=0.1, scratch_baseline=False, **TINY),
        small_dataset,
        on_progress=lambda p: seen.append(p),
    )
    clf = [p for p in seen if p.phase == "classifier"]
    assert clf[-1].batches == 1  # 30 labelled images of 300, one batch of 50
    assert result.metrics["classifier"]


def test_progress_reports_every_batch(small_dataset):
    seen = []
    run_experiment(Config(ae_epochs=2, clf_epochs=0, **TINY), small_dataset, on_progress=seen.append)
    assert len(seen) == 2 * 6  # 300 images, batches of 50
    assert seen[-1].phase == "autoencoder" and seen[-1].epoch == 2 and seen[-1].batch == 6
    assert all(p.elapsed >= 0 for p in seen) and 0 <= seen[-1].remaining < seen[0].remaining


def test_cancel_stops_within_one_batch(small_dataset):
    seen = []
    stop = lambda: len(seen) >= 3  # noqa: E731
    result = run_experiment(
        Config(ae_epochs=5, clf_epochs=5, **TINY), small_dataset, on_progress=seen.append, should_stop=stop
    )
    assert result.cancelled and len(seen) == 3
    assert result.metrics["autoencoder"] == [] and result.metrics["classifier"] == []


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_every_precision_trains(small_dataset, precision):
    if precision == "bf16" and not bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 support")
    cfg = Config(ae_epochs=3, clf_epochs=0, **{**TINY, "precision": precision})
    result = run_experiment(cfg, small_dataset)
    mse = [r["train_mse"] for r in result.metrics["autoencoder"]]
    assert mse[-1] < mse[0]
    assert result.metrics["precision"] in ("fp32", "bf16")  # auto is recorded resolved
    assert all(p.dtype == torch.float32 for p in result.autoencoder.parameters())


def test_bf16_and_fp32_agree_on_a_tiny_batch():
    if not bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 support")
    from cae.devices import autocast
    from cae.model import ConvAutoencoder

    torch.manual_seed(0)
    model, x = ConvAutoencoder(latent_dim=64), torch.rand(8, 3, 32, 32)
    full = model(x)
    with autocast(torch.device("cpu"), "bf16"):
        half = model(x).float()
    assert (full - half).abs().max() < 0.05
    assert torch.nn.functional.mse_loss(half, x).item() == pytest.approx(
        torch.nn.functional.mse_loss(full, x).item(), rel=0.02
    )


def test_auto_precision_resolves_to_a_concrete_value():
    from cae.devices import native_bf16

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32"


def test_auto_device_and_absent_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available"):
            resolve_device("cuda")


def test_accuracy_and_confusion_against_a_hand_count():
    class Fixed(torch.nn.Module):
        def forward(self, x):  # predicts class 0 for the first half, class 1 for the rest
            out = torch.zeros(len(x), 10)
            out[: len(x) // 2, 0] = 1
            out[len(x) // 2 :, 1] = 1
            return out

    images = torch.zeros(4, 32, 32, 3, dtype=torch.uint8)
    labels = torch.tensor([0, 1, 1, 1])
    scores = evaluate_classifier(Fixed(), images, labels, num_classes=10)
    assert scores["test_acc"] == 75.0  # predictions 0,0,1,1 against labels 0,1,1,1
    assert scores["per_class_acc"][:2] == [100.0, pytest.approx(200 / 3)]
    assert scores["confusion"][1][:2] == [1, 2]


def test_the_workers_turn_lock_hands_over_in_arrival_order():
    """A training loop that yields its turn must let a waiting task in first."""
    import threading
    import time as clock

    from cae.worker import TurnLock

    lock, order = TurnLock(), []
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), order.append("task"), lock.release()))
    waiter.start()
    clock.sleep(0.1)  # the task is now waiting
    with lock:  # held twice (re-entrant), then the loop yields between batches
        lock.yield_turn()
        order.append("training")
    waiter.join(5)
    assert order == ["task", "training"]
    lock.release()


# --- randomness without global state ---------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize(
    "changes", [{}, {"latent_dim": 16, "upsample": "transpose", "leak": 0.0}, {"upsample": "nearest"}]
)
def test_a_seeded_generator_gives_the_weights_the_global_seed_gave(seed, changes):
    """The same init functions in the same order: today's runs (and the shipped ones) reproduce."""
    from cae.model import Classifier, ConvAutoencoder, seeded

    cfg = Config(**changes)
    torch.manual_seed(seed)
    before = ConvAutoencoder.from_config(cfg)  # the way round 1 initialised: the process-wide generator
    after = ConvAutoencoder.from_config(cfg, seeded(seed))
    assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))
    torch.manual_seed(seed)
    old_scratch = Classifier.from_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        old_scratch.head.reset_parameters()
    new_scratch = Classifier.from_config(cfg, generator=seeded(seed)).new_head(seeded(seed + 1))
    assert all(torch.equal(a, b) for a, b in zip(old_scratch.state_dict().values(), new_scratch.state_dict().values()))


def test_the_shipped_runs_initial_kernels_come_from_their_seed():
    import json

    from cae.model import ConvAutoencoder, first_layer_kernels, seeded
    from cae.runs import PRETRAINED_DIR, pretrained_index

    folder = PRETRAINED_DIR / pretrained_index(PRETRAINED_DIR)["default"]
    cfg = Config.from_dict(json.loads((folder / "metrics.json").read_text())["config"])
    shipped = torch.load(folder / "kernels.pt", weights_only=True)["initial"]
    assert torch.equal(first_layer_kernels(ConvAutoencoder.from_config(cfg, seeded(cfg.seed))), shipped)


def test_a_cpu_run_repeats_bit_for_bit_while_another_thread_draws_random_numbers(small_dataset):
    import threading

    from cae.model import ConvAutoencoder

    cfg = Config(ae_epochs=2, clf_epochs=1, device="cpu", **TINY)
    quiet = run_experiment(cfg, small_dataset)
    stop = threading.Event()

    def noisy() -> None:  # a page building random models, drawing from the process-wide generator
        while not stop.is_set():
            ConvAutoencoder(latent_dim=16)
            torch.randn(100)

    other = threading.Thread(target=noisy)
    other.start()
    try:
        busy = run_experiment(cfg, small_dataset)
    finally:
        stop.set()
        other.join()
    for model in ("autoencoder", "classifier", "scratch"):
        for x, y in zip(getattr(quiet, model).state_dict().values(), getattr(busy, model).state_dict().values()):
            assert torch.equal(x, y), model


def test_auto_picks_bf16_only_where_the_hardware_does_it(monkeypatch):
    import cae.devices as devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx512f", "avx512bw"})  # bf16 only emulated
    assert resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert resolve_precision("auto", cpu) == ("bf16" if bf16_supported(cpu) else "fp32")


def test_saturation_finds_the_best_epoch_and_where_it_levels_off():
    from cae.analysis import saturation

    rows = [{"epoch": e, "test_acc": a} for e, a in enumerate([30, 45, 52, 55.5, 56, 55.8], start=1)]
    assert saturation(rows) == {"best_acc": 56, "best_epoch": 5, "within_epoch": 4}
    assert saturation([]) is None


def test_the_verdict_says_plainly_when_pretraining_does_not_help():
    from cae.report import pretraining_verdict

    def rows(accs):
        return [{"epoch": e, "test_acc": a, "train_loss": 1.0, "seconds": 1.0} for e, a in enumerate(accs, start=1)]

    full = {"dataset": {"test_size": 10_000}}
    text = pretraining_verdict(
        {"classifier": rows([30.4, 52.5]), "scratch": {"classifier": rows([32.1, 51.3])}, **full}
    )
    # 1.7 points on 10,000 images is beyond two standard errors of the difference (1.3); 1.2 is not (1.4)
    assert text.startswith(
        "After epoch 1, for this seed, pretraining does not help: random init is ahead by 1.7 points"
    )
    assert "after the last epoch (2), for this seed, the two starts are within noise (52.5% pretrained vs 51.3%" in text
    assert text.endswith("Measured on 10,000 test images.")


def test_a_gap_smaller_than_the_noise_of_200_test_images_is_called_within_noise():
    from cae.report import pretraining_verdict

    rows = lambda accs: [{"epoch": e, "test_acc": a} for e, a in enumerate(accs, start=1)]  # noqa: E731
    text = pretraining_verdict(
        {"classifier": rows([30.0, 40.5]), "scratch": {"classifier": rows([36.0, 36.5])}, "dataset": {"test_size": 200}}
    )
    assert text.startswith("After epoch 1, for this seed, the two starts are within noise")
    assert (
        "after the last epoch (2), for this seed, the two starts are within noise (40.5% pretrained vs 36.5% "
        "scratch; on 200 test images a gap under 9.7 points is noise)"
    ) in text


def test_a_label_budget_run_takes_exactly_its_steps_and_its_labelled_count(small_dataset):
    batches = []
    cfg = Config(**{**TINY, "ae_epochs": 1, "clf_epochs": 1}).replace(
        label_count=50, clf_steps=7, clf_batch_size=20, scratch_baseline=False
    )
    result = run_experiment(cfg, small_dataset, on_progress=lambda p: batches.append(p.phase))
    assert batches.count("classifier") == 7  # 50 images at batch 20: 3 steps per epoch, the third epoch cut to 1
    assert [row["epoch"] for row in result.metrics["classifier"]] == [1, 2, 3]


def test_the_classifier_seed_changes_the_labels_and_head_but_reuses_the_autoencoder(small_dataset, tmp_path):
    base = Config(**{**TINY, "ae_epochs": 1, "clf_epochs": 2}).replace(
        label_count=30,
        clf_batch_size=10,
        scratch_baseline=False,
        device="cpu",  # the same seed repeats exactly
    )
    first = train_or_load(base.replace(clf_seed=1), small_dataset, tmp_path)
    second = train_or_load(base.replace(clf_seed=2), small_dataset, tmp_path)
    again = run_experiment(base.replace(clf_seed=1), small_dataset)
    assert second.result.metrics["autoencoder_source"] == first.path.name  # one autoencoder for every clf_seed
    acc = lambda r: [row["train_loss"] for row in r.metrics["classifier"]]  # noqa: E731
    assert acc(first.result) == acc(again) and acc(first.result) != acc(second.result)
