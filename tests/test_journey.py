"""The user's own journey, tried as they try it: presets that fit the data, shipped autoencoders
fine-tuned on other data, their own photos (any number of classes, phone photos, WebP, class
folders only), CIFAR-10 downloaded from a server, and the keys that keep shipped runs findable."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cae.config import (
    LECTURE,
    SMALL_DATA,
    Config,
    autoencoder_key,
    few_steps_warning,
    preset_config,
    preset_for,
    run_key,
)
from cae.data import DataError, decode_image, download_cifar10, load_dataset
from cae.experiment import request_keys
from cae.runs import PRETRAINED_DIR, find_run, list_runs, load_run
from tests.conftest import make_image_folder, shared_cifar, zip_of
from tests.test_cli import cae

SHIPPED = sorted(p for p in PRETRAINED_DIR.iterdir() if p.is_dir())
TINY_ARGS = ["--latent-dim", "16", "--batch-size", "50", "--precision", "fp32", "--ae-epochs", "1", "--clf-epochs", "1"]


# --- keys: later config fields never move an existing run ------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_run_keeps_its_keys(path):
    m = json.loads((path / "metrics.json").read_text())
    cfg = Config.from_dict(m["config"])
    fingerprint = m["dataset"]["fingerprint"]
    assert run_key(cfg, m["precision"], fingerprint) == m["run_key"]
    assert autoencoder_key(cfg, m["precision"], fingerprint) == m["autoencoder_key"]


def test_new_fields_enter_the_key_only_when_they_differ_from_their_default():
    base = run_key(Config(), "bf16", "x")
    assert run_key(Config(clf_batch_size=None, encoder_from=None), "bf16", "x") == base
    assert run_key(Config(clf_batch_size=100), "bf16", "x") != base
    assert autoencoder_key(Config(clf_batch_size=100), "bf16", "x") == autoencoder_key(Config(), "bf16", "x")


@pytest.mark.skipif(shared_cifar() is None, reason="the JPEG copy of CIFAR-10 is not on this machine")
def test_the_lecture_preset_request_on_the_jpeg_copy_finds_the_shipped_run():
    dataset = load_dataset(shared_cifar())
    key, _ = request_keys(preset_config(LECTURE), dataset)
    found = find_run(key)
    assert found is not None and found.parent == PRETRAINED_DIR


# --- presets that fit the data ----------------------------------------------------------------


def test_small_data_is_the_preset_for_the_sample_and_the_lecture_for_cifar10():
    assert preset_for(1_000) == SMALL_DATA
    assert preset_for(50_000) == LECTURE
    assert preset_config(SMALL_DATA).batch_size == 100


def test_an_epoch_of_fewer_than_five_steps_is_warned_about_with_its_count():
    warning = few_steps_warning(Config(), 1_000)
    assert "only 1 optimiser step" in warning and "1,000 images" in warning
    assert few_steps_warning(preset_config(SMALL_DATA), 1_000) is None
    assert "classifier epoch on 100 images" in few_steps_warning(preset_config(SMALL_DATA, label_fraction=0.1), 1_000)


def test_the_cli_keeps_the_lectures_defaults_and_prints_the_same_warning(tmp_path):
    done = cae(
        "train",
        "--data",
        "sample",
        "--limit",
        "100",
        "--ae-epochs",
        "1",
        "--clf-epochs",
        "0",
        "--latent-dim",
        "16",
        "--runs",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "Warning: An autoencoder epoch on 100 images at batch size 2,000 is only 1 optimiser step" in done.stderr
    assert json.loads((Path(done.stdout.splitlines()[-1]) / "metrics.json").read_text())["config"]["batch_size"] == 2000


# --- own photos ---------------------------------------------------------------------------------


def photo_folder(root: Path, classes: int, per_class: int = 6) -> Path:
    """Class folders of mixed sizes and modes, as phone and web pictures come."""
    rng = np.random.default_rng(classes)
    for c in range(classes):
        for split, n in (("train", per_class), ("test", 2)):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                size = [(32, 32), (64, 48), (20, 30)][i % 3]
                pixels = np.clip(rng.normal(c * 20, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
                img = Image.fromarray(pixels)
                (img.convert("L") if i % 4 == 3 else img).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("classes", [3, 12])
def test_own_photos_with_any_number_of_classes_train_end_to_end(tmp_path, classes):
    root = photo_folder(tmp_path / "photos", classes)
    done = cae("train", "--data", str(root), *TINY_ARGS, "--runs", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    run = load_run(done.stdout.splitlines()[-1])
    assert len(run.classes) == classes and run.classifier.head.out_features == classes
    assert len(run.metrics["confusion"]) == classes and len(run.metrics["per_class_acc"]) == classes


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:16] = (255, 0, 0)  # top half red
    pixels[16:] = (0, 0, 255)  # bottom half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    decoded, resized = decode_image(tmp_path / "phone.jpg")
    assert resized
    assert decoded[:, -4:, 0].mean() > 200 and decoded[:, :4, 2].mean() > 200  # red on the right now


def test_webp_pictures_are_read(tmp_path):
    root = make_image_folder(tmp_path / "d", 2, 1, classes=("a", "b"))
    Image.new("RGB", (32, 32), (0, 255, 0)).save(root / "train" / "a" / "green.webp")
    assert len(load_dataset(root).train) == 5


def test_one_class_is_explained(tmp_path):
    root = make_image_folder(tmp_path / "d", 2, 1, classes=("only",))
    with pytest.raises(DataError, match="holds one class .* at least 2 classes"):
        load_dataset(root)


def test_class_folders_alone_are_split_80_20_with_a_fixed_seed_and_say_so(tmp_path):
    root = tmp_path / "pets"
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (40, 40), (c * 200, i * 20, 50)).save(root / name / f"{i}.jpg")
    first, again = load_dataset(root), load_dataset(root)
    assert (len(first.train), len(first.test)) == (16, 4) and first.classes == ["cats", "dogs"]
    assert torch.equal(first.test.images, again.test.images)
    assert any("split 80% / 20%" in note for note in first.notes)


def test_a_class_folder_with_one_image_cannot_be_split(tmp_path):
    root = tmp_path / "pets"
    for name, n in (("cats", 5), ("dogs", 1)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 32)).save(root / name / f"{i}.png")
    with pytest.raises(DataError, match="'dogs' has 1 image; splitting .* needs at least 2"):
        load_dataset(root)


# --- transfer: a shipped (or any) autoencoder fine-tuned on other data ---------------------------


def test_an_encoder_from_another_run_is_fine_tuned_on_other_data_with_its_own_head(small_folder, tmp_path):
    runs = tmp_path / "runs"
    source = cae("train", "--data", str(small_folder), *TINY_ARGS, "--clf-epochs", "0", "--runs", str(runs))
    assert source.returncode == 0, source.stderr
    source_dir = Path(source.stdout.splitlines()[-1])
    photos = photo_folder(tmp_path / "photos", 3)
    done = cae(
        "train",
        "--encoder-from",
        str(source_dir),
        "--data",
        str(photos),
        "--clf-epochs",
        "2",
        "--clf-batch-size",
        "6",
        "--precision",
        "fp32",
        "--runs",
        str(runs),
    )
    assert done.returncode == 0, done.stderr
    assert "Autoencoder Iteration" not in done.stdout and "Fine-tuning Iteration: 2/2" in done.stdout
    run = load_run(done.stdout.splitlines()[-1])
    source_metrics = json.loads((source_dir / "metrics.json").read_text())
    m = run.metrics
    assert m["dataset"]["classes"] == ["class00", "class01", "class02"]
    assert m["pretraining_dataset"] == source_metrics["dataset"]
    assert m["autoencoder_source"] == source_dir.name
    assert m["autoencoder_key"] == source_metrics["autoencoder_key"] == run.config.encoder_from
    assert run.classifier.head.out_features == 3 and m["scratch"]["classifier"]
    assert torch.equal(run.kernels["autoencoder"], load_run(source_dir).kernels["autoencoder"])
    assert m["run_key"] != source_metrics["run_key"] and run.config.latent_dim == 16

    again = cae(
        "train",
        "--encoder-from",
        str(source_dir),
        "--data",
        str(photos),
        "--clf-epochs",
        "2",
        "--clf-batch-size",
        "6",
        "--precision",
        "fp32",
        "--runs",
        str(runs),
    )
    assert "reusing it" in again.stdout  # the request's key names the source by key, not by path


def test_a_model_option_that_conflicts_with_the_source_exits_2(tmp_path):
    shipped = PRETRAINED_DIR / json.loads((PRETRAINED_DIR / "index.json").read_text())["default"]
    done = cae(
        "train", "--encoder-from", str(shipped), "--data", "sample", "--latent-dim", "64", "--runs", str(tmp_path)
    )
    assert done.returncode == 2 and "--latent-dim 64 conflicts" in done.stderr


def test_evaluate_test_limit_zero_is_the_whole_split_and_negative_exits_2():
    shipped = PRETRAINED_DIR / json.loads((PRETRAINED_DIR / "index.json").read_text())["default"]
    whole = cae("evaluate", str(shipped), "--data", "sample", "--test-limit", "0")
    assert whole.returncode == 0, whole.stderr
    scores = json.loads(whole.stdout)
    assert scores["test_acc"] > 20 and scores["test_mse"] > 0  # not zeros: 200 real test images
    negative = cae("evaluate", str(shipped), "--data", "sample", "--test-limit", "-5")
    assert negative.returncode == 2 and "--test-limit must be 0" in negative.stderr


# --- CIFAR-10 from a server (a local one, in CIFAR-10's own format) ---------------------------------


def cifar_tarball(path: Path, per_batch: int = 20) -> str:
    """A tiny archive laid out like cifar-10-python.tar.gz; returns its MD5."""
    rng = np.random.default_rng(0)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    files = {"batches.meta": {b"label_names": names}}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        files[name] = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": [i % 10 for i in range(per_batch)],
        }
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            blob = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    md5 = cifar_tarball(served / "cifar-10-python.tar.gz")
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz", md5
    server.shutdown()


def test_cifar10_downloads_into_any_folder_with_progress(cifar_server, tmp_path, monkeypatch):
    url, md5 = cifar_server
    monkeypatch.setenv("CAE_CIFAR10_URL", url)
    monkeypatch.setenv("CAE_CIFAR10_MD5", md5)
    seen = []
    download_cifar10(tmp_path / "my" / "cifar", on_progress=lambda done, total: seen.append((done, total)))
    d = load_dataset(tmp_path / "my" / "cifar")
    assert (len(d.train), len(d.test)) == (100, 20) and d.classes[0] == "airplane" and d.source == "cifar10"
    assert seen and seen[-1][0] == seen[-1][1] > 0
    assert not list((tmp_path / "my" / "cifar").glob(".*part"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_dataset(empty, on_progress=lambda *a: None).fingerprint == d.fingerprint  # an empty folder downloads


def test_a_damaged_download_is_refused(cifar_server, tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_CIFAR10_URL", cifar_server[0])
    monkeypatch.setenv("CAE_CIFAR10_MD5", "0" * 32)
    with pytest.raises(DataError, match="damaged"):
        load_dataset(tmp_path / "cifar")


def test_offline_download_names_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path)  # an empty folder: CIFAR-10 would be downloaded there
    for way_out in ("go online", "CAE_DATA", "--data", "--data sample"):
        assert way_out in str(err.value)


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_planted_cifar_batch_is_never_run_as_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": Exploit()}))
    with pytest.raises(DataError, match="damaged"):
        load_dataset(tmp_path)


# --- one spelling of every path ----------------------------------------------------------------


def test_the_default_runs_folder_is_absolute_and_listed_as_it_is_saved(tmp_path, monkeypatch, small_dataset):
    from cae.experiment import train_or_load
    from cae.runs import runs_dir

    monkeypatch.delenv("CAE_RUNS")
    monkeypatch.chdir(tmp_path)
    assert runs_dir() == tmp_path.resolve() / "runs"
    cfg = Config(latent_dim=16, batch_size=100, ae_epochs=1, clf_epochs=0, test_limit=50, precision="fp32")
    saved = train_or_load(cfg, small_dataset).path
    assert saved in [info.path for info in list_runs()]


# --- uploads: a folder or a zip of the user's photos ---------------------------------------------


def png_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_zip_of_class_folders_becomes_a_split_image_folder_in_the_cache():
    from cae.data import cache_dir
    from cae.uploads import unpack_upload

    entries = {
        f"holiday/{c}/{i}.png": png_bytes((i * 40, c == "sea" and 200, 0)) for c in ("beach", "sea") for i in range(5)
    }
    entries["holiday/notes.txt"] = b"not a picture"
    entries["__MACOSX/holiday/._beach"] = b"junk"
    root = unpack_upload([("photos.zip", zip_of(entries))])
    assert root.parent == cache_dir() / "uploads"
    d = load_dataset(root)
    assert d.classes == ["beach", "sea"] and (len(d.train), len(d.test)) == (8, 2)
    assert unpack_upload([("photos.zip", zip_of(entries))]) == root  # the same upload is one folder


def test_an_uploaded_folder_with_train_and_test_keeps_its_split():
    from cae.uploads import unpack_upload

    files = [
        (f"mine/{split}/{c}/{i}.png", png_bytes((i * 30, 0, 0) if c == "a" else (0, 0, i * 30)))
        for split, n in (("train", 4), ("test", 2))
        for c in ("a", "b", "c")
        for i in range(n)
    ]
    d = load_dataset(unpack_upload(files))
    assert (len(d.train), len(d.test), len(d.classes)) == (12, 6, 3)
    assert not any("split" in note for note in d.notes) and d.name.startswith("uploaded photos")


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"../../evil/a.png": b"x"}, "leaves its folder"),
        ({"/etc/cron.d/a.png": b"x"}, "leaves its folder"),
        ({"readme.txt": b"hello", "data.csv": b"1,2"}, "holds no pictures"),
    ],
)
def test_a_bad_zip_gets_one_sentence(entries, message):
    from cae.uploads import UploadError, unpack_upload

    with pytest.raises(UploadError, match=message):
        unpack_upload([("x.zip", zip_of(entries))])


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    from cae import uploads

    bomb = zip_of({f"c{i}/x.png": bytes(600_000) for i in range(2)})
    assert len(bomb) < 10_000
    with pytest.raises(uploads.UploadError, match="zip bomb"):
        uploads.unpack_upload([("bomb.zip", bomb)], uploads.Budget(bytes=1_000_000))  # the limit, scaled down


def test_a_file_that_is_not_a_zip_is_explained():
    from cae.uploads import UploadError, unpack_upload

    with pytest.raises(UploadError, match="not a readable zip"):
        unpack_upload([("photos.zip", b"PK not really")])


def press_download_on_the_data_page(folder: Path):
    """The Data page: CIFAR-10 as the source, a folder typed, Download pressed."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py").run()
    at.radio(key="data_kind").set_value("CIFAR-10 (downloads ~170 MB into a folder when online)").run()
    at.text_input(key="data_download").set_value(str(folder)).run()
    at.button(key="download_cifar").click().run()
    assert not at.exception
    return at


def test_the_data_page_downloads_cifar10_into_a_chosen_folder_and_uses_it(cifar_server, tmp_path, monkeypatch):
    url, md5 = cifar_server
    monkeypatch.setenv("CAE_CIFAR10_URL", url)
    monkeypatch.setenv("CAE_CIFAR10_MD5", md5)
    at = press_download_on_the_data_page(tmp_path / "my-cifar")
    assert at.session_state["data_source"] == str((tmp_path / "my-cifar").resolve())
    assert any(h.value.startswith("In use: CIFAR-10") for h in at.header)


def test_offline_the_data_page_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    at = press_download_on_the_data_page(tmp_path / "offline")
    text = " ".join(e.value for e in at.error)
    assert "go online" in text and "the bundled sample and any image folder still work" in text
