"""What an experiment will use and spend, before it runs: its images (class-balanced subsets, the
same for every seed), its classifiers' seeds and epochs, and its work in MFLOP (the time estimates'
basis). Shared by training (cae/train.py), the label-budget sweep, the estimates and bench/."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cae.config import Config, ceil_div, labelled_count, optimiser_steps
from cae.data import Dataset, balanced_subset, to_device
from cae.latent import ENCODE_MFLOP, TEST_SUBSET, TRAIN_SUBSET

# Work per image in MFLOP (forward = 1, training step = 3 x forward), used for time estimates; a
# contrastive step trains the encoder on two views (2 x a classifier's).
MFLOP = {
    "autoencoder": 194.0,
    "classifier": 72.0,
    "contrastive": 144.0,
    "eval_autoencoder": 64.7,
    "eval_classifier": ENCODE_MFLOP,
}


def experiment_indices(cfg: Config, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The experiment's training and test images: indices into the dataset's splits (class-balanced,
    `limit` and `test_limit` of them, the same for every seed)."""
    return balanced_subset(dataset.train.labels, cfg.limit, seed=0), balanced_subset(
        dataset.test.labels, cfg.test_limit, seed=0
    )


STEPS_EVALUATIONS = 4  # test evaluations of a classifier trained for `clf_steps` (a sweep point's cost)


def classifier_epochs(cfg: Config, n_labelled: int) -> int:
    """Epochs of classifier training: `clf_epochs`, or as many as `clf_steps` optimiser steps take
    (the last one cut short)."""
    if cfg.clf_steps is None:
        return cfg.clf_epochs
    per_epoch = optimiser_steps(n_labelled, cfg.clf_batch_size or cfg.batch_size)
    return ceil_div(cfg.clf_steps, per_epoch)


def classifier_seed(cfg: Config) -> int:
    """The classifiers' seed (labelled draw, head, batch order): `clf_seed`, else `seed`."""
    return cfg.seed if cfg.clf_seed is None else cfg.clf_seed


def scratch_init_seed(cfg: Config) -> int:
    """The scratch baseline's initial encoder: `scratch_seed`, else `seed` (the autoencoder's own start)."""
    return cfg.seed if cfg.scratch_seed is None else cfg.scratch_seed


@dataclass
class Subsets:
    """The experiment's images on the device: training images, the labelled part, the test set."""

    train: tuple[torch.Tensor, torch.Tensor]
    labelled: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    train_idx: torch.Tensor  # into the dataset's splits
    test_idx: torch.Tensor

    @classmethod
    def of(cls, cfg: Config, dataset: Dataset, device: torch.device) -> "Subsets":
        """Seeded, class-balanced: `limit` training images, `label_fraction` of them labelled,
        `test_limit` test images (the same subsets for every seed)."""
        train_idx, test_idx = experiment_indices(cfg, dataset)
        n_labelled = labelled_count(cfg, len(train_idx), len(dataset.classes))
        labelled_idx = balanced_subset(dataset.train.labels[train_idx], n_labelled, seed=cfg.clf_seed or 0)
        train = to_device(dataset.train, train_idx, device)
        labelled = labelled_idx.to(device)
        return cls(
            train,
            (train[0][labelled], train[1][labelled]),
            to_device(dataset.test, test_idx, device),
            train_idx,
            test_idx,
        )


def planned_work(cfg: Config, n_train: int, n_labelled: int, n_test: int) -> float:
    """MFLOP the experiment will spend, for the time estimate."""
    if cfg.encoder_from:
        ae = 0.0
    else:  # each epoch: training, the test MSE (none when contrastive), the code's k-NN probe
        train = MFLOP["contrastive"] if cfg.objective == "contrastive" else MFLOP["autoencoder"]
        test = 0.0 if cfg.objective == "contrastive" else MFLOP["eval_autoencoder"]
        probe = (min(n_train, TRAIN_SUBSET) + min(n_test, TEST_SUBSET)) * ENCODE_MFLOP
        ae = cfg.ae_epochs * (n_train * train + n_test * test + probe)
    epochs = classifier_epochs(cfg, n_labelled)
    evaluations = min(epochs, STEPS_EVALUATIONS) if cfg.clf_steps is not None else epochs
    seen = cfg.clf_steps * (cfg.clf_batch_size or cfg.batch_size) if cfg.clf_steps is not None else epochs * n_labelled
    clf = seen * MFLOP["classifier"] + evaluations * n_test * MFLOP["eval_classifier"]
    return ae + clf * (1 + int(cfg.scratch_baseline) if epochs else 0)
