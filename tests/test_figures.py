"""The figures show what the lecture shows: make_grid-style kernel grids, signed differences, rankings."""

import numpy as np
import pytest
import torch

from cae.figures import (
    confusion_heatmap,
    kernel_difference,
    kernel_distance_chart,
    kernel_grid_image,
    kernel_grid_picture,
    kernel_sheet,
    kernel_sheet_figure,
    kernel_update_ranking,
)
from cae.kernels import distance_from_start, kernel_timeline, update_norms


def kernels() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(64, 3, 3, 3) * torch.linspace(0.1, 2.0, 64).view(64, 1, 1, 1)


def test_the_grid_is_8_by_8_kernels_with_one_pixel_padding():
    grid = kernel_grid_image(kernels())
    assert grid.shape == (8 * 4 + 1, 8 * 4 + 1, 3) and grid.dtype == np.uint8
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()  # the padding


def test_one_normalisation_over_the_whole_grid_like_make_grid():
    k = kernels()
    grid = kernel_grid_image(k).astype(float)
    first, last = grid[1:4, 1:4], grid[29:32, 29:32]  # kernel 0 (small weights) and kernel 63 (large)
    assert np.ptp(first) < np.ptp(last)  # a shared scale keeps small kernels dim
    expected = ((k[0] - k.min()) / (k.max() - k.min())).permute(1, 2, 0).numpy() * 255
    assert np.allclose(first, expected.round(), atol=1)


def test_per_kernel_normalisation_stretches_every_kernel():
    grid = kernel_grid_image(kernels(), per_kernel=True)
    for r in range(8):
        for c in range(8):
            cell = grid[1 + 4 * r : 4 + 4 * r, 1 + 4 * c : 4 + 4 * c]
            assert cell.min() == 0 and cell.max() == 255


def test_the_picture_is_upscaled_with_sharp_pixels():
    picture = kernel_grid_picture(kernels(), scale=5)
    assert picture.shape == (33 * 5, 33 * 5, 3)
    assert (picture[5:10, 5:10] == picture[5, 5]).all()


def test_differences_use_a_diverging_scale_centred_on_zero():
    diff = kernels() - kernels().flip(0)
    heat = kernel_difference(diff, "x").data[0]
    assert heat.zmid == 0 and heat.zmin == -heat.zmax
    values = np.array(heat.z, dtype=float)
    assert np.nanmax(values) > 0 > np.nanmin(values)  # both signs are there to see


def test_the_ranking_is_largest_update_first_with_values_on_hover():
    diff = torch.zeros(64, 3, 3, 3)
    diff[7] = 3.0
    diff[2] = 1.0
    bar = kernel_update_ranking(diff, "x").data[0]
    assert list(bar.x[:2]) == ["#7", "#2"]
    assert bar.y[0] == update_norms(diff)[7].item() == pytest.approx(3 * 27**0.5)  # sqrt(27 * 3**2)
    assert "%{y" in bar.hovertemplate


def test_the_confusion_matrix_has_true_classes_as_rows():
    fig = confusion_heatmap([[5, 1], [2, 3]], ["cat", "dog"])
    assert list(fig.data[0].y) == ["cat", "dog"] and fig.layout.yaxis.title.text == "true class"


def snapshots(ae_epochs: int = 3, clf_epochs: int = 2) -> dict[str, torch.Tensor]:
    start = kernels()
    ae = torch.stack([start + 0.1 * (e + 1) for e in range(ae_epochs)])
    fine = torch.stack([ae[-1] + 0.05 * (e + 1) for e in range(clf_epochs)])
    scratch = torch.stack([start - 0.2 * (e + 1) for e in range(clf_epochs)])
    return {
        "initial": start,
        "autoencoder": ae[-1],
        "finetuned": fine[-1],
        "scratch": scratch[-1],
        "autoencoder_epochs": ae,
        "finetuned_epochs": fine,
        "scratch_epochs": scratch,
    }


def test_the_timeline_runs_from_the_random_start_through_every_epoch():
    steps = kernel_timeline(snapshots())
    assert [name for name, _ in steps] == [
        "initial (random)",
        "autoencoder epoch 1",
        "autoencoder epoch 2",
        "autoencoder epoch 3",
        "fine-tuning epoch 1",
        "fine-tuning epoch 2",
    ]
    old = {k: v for k, v in snapshots().items() if not k.endswith("_epochs")}  # a run saved before per-epoch kernels
    assert [name for name, _ in kernel_timeline(old)] == [
        "initial (random)",
        "after the autoencoder",
        "after fine-tuning",
    ]


def test_distances_from_the_random_start_per_phase():
    lines = distance_from_start(snapshots())
    per_weight = 27**0.5  # a shift of d on all 27 weights of a kernel is d * sqrt(27) away
    assert [round(d / per_weight, 4) for _, d in lines["autoencoder"]] == [0.0, 0.1, 0.2, 0.3]
    assert [round(d / per_weight, 4) for _, d in lines["fine-tuned classifier"]] == [
        0.3,
        0.35,
        0.4,
    ]  # starts where the autoencoder ended
    assert [round(d / per_weight, 4) for _, d in lines["scratch classifier"]] == [0.0, 0.2, 0.4]
    assert distance_from_start({"initial": kernels(), "autoencoder": kernels()}) == {}
    fig = kernel_distance_chart(lines, chosen=5, kernels=snapshots())
    assert len(fig.data) == 6  # three means and kernel 5's three lines


def test_the_projector_sheet_has_crisp_kernels_and_thin_separators():
    sheet = kernel_sheet(kernels(), scale=16, gap=2)
    assert sheet.shape == (8 * 50 + 2, 8 * 50 + 2, 3)
    assert (sheet[:2] == 255).all() and (sheet[50:52, :] == 255).all()  # the separators
    assert (sheet[2:18, 2:18] == sheet[2, 2]).all()  # one weight is a 16x16 block
    fixed = kernel_sheet(kernels() * 0.5, bounds=(float(kernels().min()), float(kernels().max())))
    assert fixed.astype(int).std() < sheet.astype(int).std()  # one scale for all snapshots: smaller weights look paler
    clickable = kernel_sheet_figure(sheet, chosen=9).data[1]
    assert list(clickable.customdata) == list(range(64)) and clickable.x[9] == 2 + 50 + 24
