"""Dataset sources (torchvision CIFAR-10, an image folder, the bundled sample) -> uint8 tensors.

Images are decoded once and cached as one tensor file per split under `cache_dir()`; training
batches are taken on the device from those tensors, with no DataLoader and no per-item PIL work.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tarfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cae import cifar10
from cae.cifar10 import FOLDER as CIFAR10_FOLDER
from cae.files import WriteError, absolute, save_tensors, write_atomically

SAMPLE = "sample"
SAMPLE_FILE = Path(__file__).parent / "assets" / "cifar10-sample.npz"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
IMAGE_KINDS = "PNG, JPEG, WebP or BMP"
MAX_PIXELS = 40_000_000  # per image; larger files are skipped (a 40-megapixel photo is 160 MB decoded)
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")  # what PIL may decode: IMAGE_KINDS, whatever a file's name says
TEST_SHARE = 0.2  # class folders without train/ and test/ are split 80/20
SIDE = 32
SPLITS = ("train", "test")
UPLOADS = "uploads"  # the cache's folder of unpacked uploads
CACHE_FORMAT = 2  # 2: EXIF orientation applied


class DataError(Exception):
    """The data a user pointed at cannot be used; the message says why and what to do."""


@dataclass
class Split:
    """One split: uint8 images (N,3,32,32) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    sha256: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    """Two splits and the class names; `fingerprint` identifies the images, not their path."""

    name: str
    source: str  # "cifar10" | "folder" | "sample"
    classes: list[str]
    train: Split
    test: Split
    fingerprint: str
    notes: list[str] = field(default_factory=list)  # e.g. "312 images were resized to 32x32"
    origin: str = ""  # what load_dataset was given, absolute: "sample" or a folder

    def class_counts(self) -> list[dict]:
        """Images per class in each split: [{"class", "train", "test"}]."""
        train, test = (torch.bincount(s.labels, minlength=len(self.classes)).tolist() for s in (self.train, self.test))
        return [{"class": c, "train": train[i], "test": test[i]} for i, c in enumerate(self.classes)]

    def summary(self) -> dict:
        """The `dataset` entry of a run's metrics.json."""
        summary = {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "train_size": len(self.train),
            "test_size": len(self.test),
            "classes": list(self.classes),
        }
        return {**summary, "origin": self.origin} if self.origin else summary


def cache_dir() -> Path:
    """Where decoded splits are cached: $CAE_CACHE, else ~/.cache/cae-explorer."""
    return absolute(os.environ.get("CAE_CACHE") or Path.home() / ".cache" / "cae-explorer")


def default_source() -> str:
    """The data source when none is given: $CAE_DATA, else ./data."""
    return os.environ.get("CAE_DATA") or "data"


MAX_PATH_CHARS = 4096  # Linux's PATH_MAX


def load_dataset(source: str | os.PathLike | None = None, download: bool = True, on_progress=None) -> Dataset:
    """Load a dataset from `source`: "sample", an image folder, or a CIFAR-10 download folder
    (downloaded there when it is empty and `download` is set; `on_progress(done, total)` bytes)."""
    source = str(source) if source is not None else default_source()
    if len(source) > MAX_PATH_CHARS:
        raise DataError(
            f"The data path is {len(source):,} characters long, more than any folder's ({MAX_PATH_CHARS:,}); "
            "point it at a folder of pictures."
        )
    try:
        dataset = load_sample() if source == SAMPLE else _load_folder(source, download, on_progress)
    except PermissionError as exc:  # a folder or file it may not read (e.g. --data /proc)
        raise DataError(
            f"Cannot read {exc.filename or source} (permission denied); point the data path at a "
            "folder of pictures you may read."
        ) from None
    except OSError as exc:  # a name too long for the file system, a loop of links...
        raise DataError(
            f"Cannot use the data path ({exc.strerror or type(exc).__name__}); point it at a folder of pictures."
        ) from None
    dataset.origin = SAMPLE if source == SAMPLE else str(absolute(source))
    return dataset


def _load_folder(source: str, download: bool, on_progress) -> Dataset:
    root = Path(source).expanduser()
    if root.is_file():
        raise DataError(
            f"{root} is a file; point the data path at a folder that holds "
            "train/<class>/ and test/<class>/ image folders."
        )
    if (root / CIFAR10_FOLDER).is_dir():
        return load_cifar10(root)
    if root.is_dir() and any(root.iterdir()):
        return load_image_folder(root)
    if not root.exists() and source != "data":
        raise DataError(
            f"The data folder {root} does not exist. Point --data / CAE_DATA at an "
            "image folder (train/<class>/, test/<class>/), create the folder empty to "
            "download CIFAR-10 into it, or use --data sample."
        )
    # the default ./data, or an empty folder: CIFAR-10 is downloaded there
    return load_cifar10(root, download, on_progress)


def _fingerprint(train: Split, test: Split, classes: list[str]) -> str:
    text = "|".join([train.sha256, test.sha256, ",".join(classes)])
    return hashlib.sha256(text.encode()).hexdigest()


def _tensor_sha256(images: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256()
    digest.update(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _make_split(images: np.ndarray | torch.Tensor, labels) -> Split:
    images = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.uint8)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return Split(images, labels, _tensor_sha256(images, labels))


# --- the bundled sample ---------------------------------------------------------------------


def load_sample() -> Dataset:
    """The sample bundled in the repository: 100 train + 20 test CIFAR-10 images per class."""
    if not SAMPLE_FILE.exists():
        raise DataError(
            f"The bundled sample {SAMPLE_FILE} is missing; reinstall the project "
            "or point --data / CAE_DATA at an image folder."
        )
    with np.load(SAMPLE_FILE, allow_pickle=False) as npz:
        classes = [str(c) for c in npz["classes"]]
        train = _make_split(npz["train_images"], npz["train_labels"])
        test = _make_split(npz["test_images"], npz["test_labels"])
    return Dataset(
        "bundled sample (CIFAR-10, 1,000 + 200 images)",
        SAMPLE,
        classes,
        train,
        test,
        _fingerprint(train, test, classes),
    )


# --- CIFAR-10 (the official python version, as torchvision downloads it) -----------------------


def load_cifar10(root: Path, download: bool = True, on_progress=None) -> Dataset:
    """CIFAR-10 from ROOT/cifar-10-batches-py, downloaded into `root` first when it is not there."""
    root = Path(root)
    if not (root / CIFAR10_FOLDER).is_dir():
        if not download:
            raise DataError(
                f"{root} holds no CIFAR-10 yet (no {CIFAR10_FOLDER}/ folder): download it "
                "into that folder first (the Data page has a button), or choose other data."
            )
        download_cifar10(root, on_progress)
    folder = root / CIFAR10_FOLDER
    try:
        meta = cifar10.read_batch(folder / "batches.meta")
        parts = {s: [cifar10.read_batch(folder / b) for b in cifar10.BATCHES[s]] for s in SPLITS}
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
        raise DataError(
            f"{folder} is incomplete or damaged ({type(exc).__name__}: {exc}); delete it and download CIFAR-10 again."
        ) from None
    try:
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta["label_names"]]
        splits = {
            s: _make_split(
                np.concatenate([p["data"] for p in ps]).reshape(-1, 3, SIDE, SIDE), [y for p in ps for y in p["labels"]]
            )
            for s, ps in parts.items()
        }
        if any(len(split.images) != len(split.labels) for split in splits.values()):
            raise ValueError("as many labels as images")
    except (KeyError, TypeError, ValueError) as exc:  # a batch of another shape than CIFAR-10's
        raise DataError(
            f"{folder} does not hold CIFAR-10's batches (expected 3x32x32 images with a label each; "
            f"{type(exc).__name__}: {str(exc)[:100]}); delete it and download CIFAR-10 again."
        ) from None
    return Dataset(
        "CIFAR-10 (torchvision)",
        "cifar10",
        plain_class_names(classes),
        splits["train"],
        splits["test"],
        _fingerprint(splits["train"], splits["test"], classes),
    )


def download_cifar10(root: Path, on_progress=None) -> Path:
    """Download and unpack CIFAR-10 into `root` (checked against its MD5); `on_progress(done, total)`
    in bytes. The address and checksum can be set with $CAE_CIFAR10_URL and $CAE_CIFAR10_MD5 (tests
    serve a tiny archive from a local server)."""
    url = os.environ.get("CAE_CIFAR10_URL") or cifar10.URL
    try:
        return cifar10.download(Path(root), url, os.environ.get("CAE_CIFAR10_MD5") or cifar10.MD5, on_progress)
    except cifar10.ChecksumError:
        raise DataError(
            f"The CIFAR-10 download from {url} is damaged (its checksum does not match); try again."
        ) from None
    except (OSError, WriteError, tarfile.TarError) as exc:
        raise DataError(
            f"No dataset at {root} and CIFAR-10 could not be downloaded ({type(exc).__name__}: {exc}). "
            "Ways out: go online and try again; point CAE_DATA or --data at an image folder with "
            "train/<class>/ and test/<class>/; or use the bundled sample with --data sample."
        ) from None


# --- image folders --------------------------------------------------------------------------


def scan_image_folder(root: Path) -> tuple[dict[str, dict[str, list[Path]]], list[str]]:
    """({split: {class: [files]}}, notes) for ROOT/<split>/<class>/*, or for ROOT/<class>/* split
    80/20 with a fixed seed; a clear error for each bad layout."""
    if not root.exists():
        raise DataError(
            f"The data folder {root} does not exist; check the path, or use --data sample for the bundled sample."
        )
    if not any((root / s).is_dir() for s in SPLITS) and _class_folders(root):
        layout, notes = (
            _split_class_folders(root),
            [
                f"No train/ and test/ folders: each class was split {1 - TEST_SHARE:.0%} / {TEST_SHARE:.0%} "
                "into training and test images (fixed seed, the same split every time)."
            ],
        )
    else:
        missing = [s for s in SPLITS if not (root / s).is_dir()]
        if missing:
            raise DataError(
                f"{root} has no {' or '.join(s + '/' for s in missing)} folder; an image "
                "folder needs train/<class>/ and test/<class>/ subfolders, or class "
                "folders only (split 80/20)."
            )
        layout = {s: {d.name: _image_files(d) for d in sorted((root / s).iterdir()) if d.is_dir()} for s in SPLITS}
        notes = []
    _check_layout(root, layout)
    return layout, notes


def _class_folders(root: Path) -> list[Path]:
    """Subfolders of `root` that hold at least one image file."""
    if not root.is_dir():
        return []
    return [
        d
        for d in sorted(root.iterdir())
        if d.is_dir()
        and not d.name.startswith(".")
        and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in _image_files(d))
    ]


def _split_class_folders(root: Path) -> dict[str, dict[str, list[Path]]]:
    """ROOT/<class>/* -> a seeded 80/20 train/test split per class (at least one test image)."""
    layout: dict[str, dict[str, list[Path]]] = {s: {} for s in SPLITS}
    for folder in _class_folders(root):
        files = [p for p in _image_files(folder) if p.suffix.lower() in IMAGE_EXTENSIONS]
        if len(files) < 2:
            raise DataError(
                f"Class {folder.name!r} has {len(files)} image; splitting into training "
                "and test images needs at least 2 per class. Add images or remove the folder."
            )
        order = np.random.default_rng(0).permutation(len(files))
        n_test = max(1, round(TEST_SHARE * len(files)))
        layout["test"][folder.name] = sorted(files[i] for i in order[:n_test])
        layout["train"][folder.name] = sorted(files[i] for i in order[n_test:])
    return layout


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _check_layout(root: Path, layout: dict[str, dict[str, list[Path]]]) -> None:
    train, test = (set(layout[s]) for s in SPLITS)
    if not train and not test:
        raise DataError(
            f"{root}/train and {root}/test hold no class folders; put images in train/<class>/ and test/<class>/."
        )
    if len(train | test) < 2:
        raise DataError(
            f"{root} holds one class ({sorted(train | test)[0]!r}); a classifier needs at "
            "least 2 classes, one folder each."
        )
    for only, other in ((train - test, "test"), (test - train, "train")):
        if only:
            raise DataError(
                f"Class {sorted(only)[0]!r} has a folder in one split only; add "
                f"{root}/{other}/{sorted(only)[0]}/ with images, or remove it."
            )
    for split, classes in layout.items():
        for name, files in classes.items():
            if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in files):
                raise DataError(
                    f"Class folder {root}/{split}/{name} holds no images "
                    "({IMAGE_KINDS}); add some or remove the folder."
                )


def load_image_folder(root: Path) -> Dataset:
    """ROOT/train/<class>/* and ROOT/test/<class>/*; class names are the sorted folder names."""
    root = Path(root)
    layout, notes = scan_image_folder(root)
    classes = sorted(layout["train"])
    splits = {}
    for split in SPLITS:
        splits[split], split_notes = _cached_folder_split(root, split, layout[split], classes)
        notes += split_notes
    if len(splits["train"]) + len(splits["test"]) == 0:
        raise DataError(f"No readable images under {root}; add {IMAGE_KINDS} files.")
    uploaded = root.resolve().parent == cache_dir() / UPLOADS
    name = (
        f"uploaded photos ({len(classes)} classes)"
        if uploaded
        else f"image folder {plain_class_names([root.resolve().name])[0]}"
    )
    return Dataset(
        name,
        "folder",
        plain_class_names(classes),
        splits["train"],
        splits["test"],
        _fingerprint(splits["train"], splits["test"], classes),
        notes,
    )


def plain_class_names(names: list[str]) -> list[str]:
    """Class names as the pages show them: folder names come from users, so only letters, digits,
    spaces, hyphens and apostrophes are kept (no Markdown link or emphasis, no HTML tag for Plotly's
    labels, no address to autolink), at most 40 characters, each one different. Plain names, such
    as CIFAR-10's, are unchanged."""
    shown: list[str] = []
    for i, name in enumerate(names):
        text = " ".join(re.sub(r"[^\w\s'-]|_", " ", name).split())[:40].strip() or f"class {i}"
        while text in shown:
            text = f"{text} ({i})"
        shown.append(text)
    return shown


def _listing_key(root: Path, split: str, files: dict[str, list[Path]]) -> str:
    """Cache key from the folder's path, file names and folder times (no per-file reads)."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{root.resolve()}|{split}".encode())
    for name, paths in files.items():
        folders = sorted({p.parent for p in paths})
        stamps = ",".join(str(f.stat().st_mtime_ns) for f in folders)
        digest.update(f"{name}|{stamps}|{len(paths)}".encode())
        digest.update("\n".join(str(p.relative_to(root)) for p in paths).encode())
    return digest.hexdigest()[:24]


def _cached_folder_split(
    root: Path, split: str, files: dict[str, list[Path]], classes: list[str]
) -> tuple[Split, list[str]]:
    path = cache_dir() / f"folder-{_listing_key(root, split, files)}-{split}.pt"
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            return Split(blob["images"], blob["labels"], blob["sha256"]), list(blob["notes"])
        except Exception:
            pass  # a damaged cache file is rebuilt below
    split_data, notes = _decode_folder_split(root, split, files, classes)
    _write_cache(
        path, {"images": split_data.images, "labels": split_data.labels, "sha256": split_data.sha256, "notes": notes}
    )
    return split_data, notes


def _write_cache(path: Path, blob: dict) -> None:
    """Best effort: a cache that cannot be written only costs a decode next time."""
    try:
        write_atomically(path, lambda tmp: save_tensors(blob, tmp), folder=False)
    except WriteError as exc:
        warnings.warn(
            f"Could not write the dataset cache {path} ({exc}); images will be decoded "
            "again next time. Set CAE_CACHE to a writable folder.",
            stacklevel=2,
        )


def open_image(source):
    """PIL's image for a path or a binary file, reading the header only; only FORMATS are tried (a
    TIFF or GIF named .jpg is refused). Raises OSError-like errors for anything else."""
    import warnings as _warnings

    from PIL import Image

    with _warnings.catch_warnings():  # our own limit (MAX_PIXELS) is checked by the callers
        _warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source, formats=FORMATS)


def image_pixels(source) -> int | None:
    """Width x height from a picture's header (nothing decoded), or None when it is not one of FORMATS."""
    try:
        with open_image(source) as img:
            return img.width * img.height
    except Exception:
        return None


def decode_image(path: str | os.PathLike) -> tuple[np.ndarray | None, bool]:
    """One file -> (uint8 HxWx3 at 32x32, was_resized); (None, False) when it is not an image."""
    from PIL import Image, ImageOps

    try:
        with open_image(path) as img:
            if img.width * img.height > MAX_PIXELS:
                return None, False
            img = ImageOps.exif_transpose(img).convert("RGB")  # phone photos stand upright
            resized = img.size != (SIDE, SIDE)
            if resized:
                img = img.resize((SIDE, SIDE), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8), resized
    except Exception:
        return None, False


def _decode_many(paths: list[str]) -> list[tuple[np.ndarray | None, bool]]:
    if len(paths) < 2000:
        return [decode_image(p) for p in paths]
    workers = max(1, min(8, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(decode_image, paths, chunksize=500))


def _decode_folder_split(
    root: Path, split: str, files: dict[str, list[Path]], classes: list[str]
) -> tuple[Split, list[str]]:
    paths, labels = [], []
    for label, name in enumerate(classes):
        for p in files.get(name, []):
            paths.append(str(p))
            labels.append(label)
    decoded = _decode_many(paths)
    keep = [i for i, (img, _) in enumerate(decoded) if img is not None]
    skipped, resized = len(paths) - len(keep), sum(r for _, r in decoded)
    notes = []
    if skipped:
        notes.append(
            f"{split}: skipped {skipped} file(s) that are not readable images (or larger than "
            f"{MAX_PIXELS // 1_000_000} megapixels)."
        )
        warnings.warn(f"{root}/{notes[-1]}", stacklevel=2)
    if resized:
        notes.append(f"{split}: {resized} image(s) were not 32x32 and were resized to 32x32.")
    images = np.stack([decoded[i][0] for i in keep]) if keep else np.zeros((0, SIDE, SIDE, 3), np.uint8)
    return _make_split(images.transpose(0, 3, 1, 2), [labels[i] for i in keep]), notes


# --- subsets and batches --------------------------------------------------------------------


def balanced_subset(labels: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """Indices of a fixed, seeded, class-balanced subset of `n` items (all of them when n is None)."""
    total = int(labels.shape[0])
    if n is None or n >= total:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(total, generator=generator)
    classes = torch.unique(labels).tolist()
    per_class = {c: n // len(classes) + (i < n % len(classes)) for i, c in enumerate(classes)}
    chosen, taken = [], {c: 0 for c in classes}
    for idx in order.tolist():
        c = int(labels[idx])
        if taken[c] < per_class[c]:
            chosen.append(idx)
            taken[c] += 1
    return torch.tensor(sorted(chosen), dtype=torch.int64)


def to_device(split: Split, indices: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The chosen images as uint8 NHWC on the device (so batches come out channels_last) and labels."""
    images = split.images[indices].permute(0, 2, 3, 1).contiguous().to(device)
    return images, split.labels[indices].to(device)


def as_float(images_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 (B,32,32,3) -> float (B,3,32,32) in [0,1], channels_last in memory."""
    return images_nhwc.permute(0, 3, 1, 2).float().div_(255)


def batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator, flip: bool = False
):
    """Shuffled float batches in [0,1] taken on the device: yields (x (B,3,32,32), y (B,))."""
    n = images.shape[0]
    order = torch.randperm(n, generator=generator).to(images.device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        x = as_float(images[idx])
        if flip:
            mask = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(mask.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
        yield x, labels[idx]
