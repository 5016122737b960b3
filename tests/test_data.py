"""Data: image folders, the bundled sample, the cache, the fingerprint, and a clear message for every bad folder."""

import shutil

import pytest
import torch
from PIL import Image

from cae import data
from cae.data import DataError, balanced_subset, batches, load_dataset, to_device
from tests.conftest import make_image_folder


def test_image_folder_gives_uint8_splits_and_sorted_classes(small_dataset):
    d = small_dataset
    assert d.classes == sorted(d.classes) and len(d.classes) == 10
    assert d.train.images.shape == (300, 3, 32, 32) and d.train.images.dtype == torch.uint8
    assert d.test.images.shape == (100, 3, 32, 32)
    assert d.train.labels.dtype == torch.int64
    assert torch.bincount(d.train.labels).tolist() == [30] * 10


def test_second_load_comes_from_the_cache(small_folder, monkeypatch):
    first = load_dataset(small_folder)
    monkeypatch.setattr(data, "decode_image", lambda p: pytest.fail("decoded again"))
    second = load_dataset(small_folder)
    assert torch.equal(first.train.images, second.train.images)
    assert first.fingerprint == second.fingerprint


def test_cache_is_never_written_into_the_data_folder(small_folder):
    load_dataset(small_folder)
    assert not any(p.suffix == ".pt" for p in small_folder.rglob("*"))


def test_fingerprint_is_the_content_not_the_path(small_folder, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(small_folder, copy)
    assert load_dataset(copy).fingerprint == load_dataset(small_folder).fingerprint


def test_different_images_have_a_different_fingerprint(tmp_path, small_dataset):
    other = make_image_folder(tmp_path / "other", 2, 1, classes=("a", "b"))
    assert load_dataset(other).fingerprint != small_dataset.fingerprint


def test_bundled_sample_has_100_train_and_20_test_images_per_class():
    d = load_dataset("sample")
    assert d.source == "sample" and len(d.classes) == 10
    assert torch.bincount(d.train.labels).tolist() == [100] * 10
    assert torch.bincount(d.test.labels).tolist() == [20] * 10
    assert d.train.images.shape[1:] == (3, 32, 32) and d.train.images.dtype == torch.uint8


def test_data_source_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAE_DATA", "sample")
    assert load_dataset().source == "sample"


def test_other_sizes_are_resized_and_noted(tmp_path):
    root = make_image_folder(tmp_path / "d", 2, 1, classes=("a", "b"))
    Image.new("RGB", (64, 48), (255, 0, 0)).save(root / "train" / "a" / "big.png")
    Image.new("L", (32, 32), 128).save(root / "train" / "b" / "gray.png")
    d = load_dataset(root)
    assert len(d.train) == 6
    assert any("resized to 32x32" in n for n in d.notes)


# --- one clear message per bad folder ---------------------------------------------------------


def test_missing_train_or_test_folder(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "train" / "a" / "x.png")
    with pytest.raises(DataError, match="no test/ folder"):
        load_dataset(tmp_path)


def test_class_in_one_split_only(tmp_path):
    root = make_image_folder(tmp_path / "d", 1, 1, classes=("a", "b"))
    shutil.rmtree(root / "test" / "b")
    with pytest.raises(DataError, match="'b' has a folder in one split only"):
        load_dataset(root)


def test_empty_class(tmp_path):
    root = make_image_folder(tmp_path / "d", 1, 1, classes=("a", "b"))
    for f in (root / "train" / "b").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="train/b holds no images"):
        load_dataset(root)


def test_a_file_that_is_not_an_image_is_skipped_with_a_warning(tmp_path):
    root = make_image_folder(tmp_path / "d", 2, 1, classes=("a", "b"))
    (root / "train" / "a" / "notes.txt").write_text("not a picture")
    (root / "train" / "a" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match="skipped 2 file"):
        d = load_dataset(root)
    assert len(d.train) == 4


def test_zero_images(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
    with pytest.raises(DataError, match="hold no class folders"):
        load_dataset(tmp_path)


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_path_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        load_dataset(f)


# --- subsets and batches ----------------------------------------------------------------------


def test_limit_is_a_fixed_class_balanced_subset(small_dataset):
    labels = small_dataset.train.labels
    a, b = balanced_subset(labels, 100, seed=0), balanced_subset(labels, 100, seed=0)
    assert torch.equal(a, b) and len(a) == 100
    assert torch.bincount(labels[a]).tolist() == [10] * 10
    assert len(balanced_subset(labels, None, 0)) == len(labels)


def test_batches_are_float_in_unit_range_and_cover_the_split(small_dataset):
    images, labels = to_device(small_dataset.train, torch.arange(300), torch.device("cpu"))
    seen = 0
    for x, y in batches(images, labels, 128, torch.Generator().manual_seed(0)):
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        assert 0 <= x.min() and x.max() <= 1
        assert x.is_contiguous(memory_format=torch.channels_last)
        seen += len(y)
    assert seen == 300


def test_flip_mirrors_some_images(small_dataset):
    images, labels = to_device(small_dataset.train, torch.arange(64), torch.device("cpu"))
    ((plain, _),) = batches(images, labels, 64, torch.Generator().manual_seed(1))
    ((flipped, _),) = batches(images, labels, 64, torch.Generator().manual_seed(1), flip=True)
    assert not torch.equal(plain, flipped)
    same = [torch.equal(plain[i], flipped[i]) or torch.equal(plain[i].flip(2), flipped[i]) for i in range(64)]
    assert all(same)
