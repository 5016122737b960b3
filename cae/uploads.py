"""Photos a user uploads — a folder or a zip, of train/<class>/ and test/<class>/ or of class folders
only — unpacked into the cache as an image folder, within stated limits; and one picture (Try an
image, Latent space) decoded into a 32x32 input (`image_from_bytes`)."""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from cae.data import IMAGE_EXTENSIONS, IMAGE_KINDS, MAX_PIXELS, UPLOADS, DataError, cache_dir, image_pixels, open_image
from cae.files import WriteError, write_atomically

MAX_UPLOAD_MB = 200  # per uploaded file (the zip), set on the uploader widget
MAX_FILES = 20_000  # pictures in one upload
MAX_UNPACKED_BYTES = 1_000_000_000  # all pictures together, as unpacked
MAX_TOTAL_PIXELS = 2_000_000_000  # all pictures together, as decoded: a bound on the CPU one upload costs
BLOCK = 4096  # a file takes whole blocks of the disk: a 70-byte picture costs 4,096 bytes
DECODED_BYTES = 32 * 32 * 3  # a picture in the decoded cache the app keeps beside an upload
MAX_DEPTH = 16  # folders in a picture's path inside the upload (train/<class>/ needs 3; a wrapper or two more)
MAX_NAME_BYTES = 255  # one file or folder name, as the file system allows
LIMITS = (
    f"at most {MAX_UPLOAD_MB} MB per uploaded file, {MAX_FILES:,} pictures, "
    f"{MAX_UNPACKED_BYTES // 1_000_000:,} MB unpacked and {MAX_TOTAL_PIXELS // 1_000_000:,} megapixels "
    f"in all, {MAX_PIXELS // 1_000_000} megapixels per picture ({IMAGE_KINDS}; other files are left out)"
)


class UploadError(DataError):
    """An upload that cannot become an image folder; the message says why in one sentence."""


@dataclass(frozen=True)
class Budget:
    """What one upload may unpack to: bytes written (a seat's quota left, in classroom mode) and
    pixels decoded (the CPU that reading it will cost)."""

    bytes: int = MAX_UNPACKED_BYTES
    pixels: int = MAX_TOTAL_PIXELS
    files: int = MAX_FILES


def disk_cost(size: int) -> int:
    """What a picture of `size` bytes costs the server's disk once unpacked and decoded."""
    return -(-max(size, 1) // BLOCK) * BLOCK + DECODED_BYTES


def unpack_upload(files: list[tuple[str, bytes]], budget: Budget = Budget()) -> Path:
    """Uploaded files -> an image folder under the cache, named by its content (the same upload
    twice is one folder). `files` are (name, bytes): a folder's files with their paths inside it,
    or a single .zip. Counted against `budget` before anything is written: declared sizes first,
    then the bytes read and each picture's header (width x height; nothing is decoded here)."""
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        pictures = _from_zip(files[0][1], budget)
    else:
        pictures = _pictures([(name, lambda data=data: data, len(data)) for name, data in files], budget)
    if not pictures:
        raise UploadError(
            f"The upload holds no pictures ({IMAGE_KINDS}); upload a folder with one subfolder of pictures per class."
        )
    pictures = _strip_common_folder(pictures)
    digest = hashlib.sha256()
    for name, data in sorted(pictures.items()):
        digest.update(f"{name}|{len(data)}|".encode())
        digest.update(data)
    target = cache_dir() / UPLOADS / digest.hexdigest()[:24]
    if not target.exists():
        try:
            write_atomically(target, lambda tmp: _write(tmp, pictures))
        except WriteError as exc:
            raise UploadError(
                "The server could not store the upload in its cache folder (no space or no permission there): "
                "ask whoever runs it to set CAE_CACHE to a writable folder with free space."
            ) from exc
    return target


def _from_zip(blob: bytes, budget: Budget) -> dict[PurePosixPath, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UploadError("The uploaded file is not a readable zip archive.") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        pictures = [m for m in members if m.filename.lower().endswith(tuple(IMAGE_EXTENSIONS))]
        if sum(m.file_size for m in pictures) > budget.bytes:
            raise UploadError(_too_big("The zip's pictures would unpack to", budget))
        try:
            return _pictures([(m.filename, lambda m=m: _read_capped(archive, m), m.file_size) for m in members], budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, RuntimeError) as exc:
            raise UploadError(f"The zip is damaged ({type(exc).__name__}: {str(exc)[:120]}); pack it again.") from None


def _read_capped(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its declared size (a zip can lie about it)."""
    with archive.open(member) as f:
        data = f.read(member.file_size + 1)
    if len(data) > member.file_size:
        raise UploadError(
            f"{member.filename!r} unpacks to more than the zip declares (a zip bomb); the upload is refused."
        )
    return data


def _pictures(entries, budget: Budget) -> dict[PurePosixPath, bytes]:
    """{safe relative path: bytes} of the picture files among (name, read, size) entries, within
    `budget`; files that are not pictures of IMAGE_KINDS under MAX_PIXELS are left out (the image
    loader would skip them)."""
    pictures: dict[PurePosixPath, bytes] = {}
    total = pixels = 0
    for name, read, _declared in entries:
        path = _safe_path(name)
        if path is None or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue  # folders' own files (.DS_Store, __MACOSX/…, notes) are left out
        if len(pictures) >= budget.files:
            allowed = "what this seat may still upload" if budget.files < MAX_FILES else "this app's limit"
            raise UploadError(f"The upload holds more than {budget.files:,} pictures, {allowed}; upload fewer.")
        data = read()
        total += disk_cost(len(data))
        if total > budget.bytes:
            raise UploadError(_too_big("The pictures add up to", budget))
        count = image_pixels(io.BytesIO(data))
        if count is None or count > MAX_PIXELS:
            continue
        pixels += count
        if pixels > budget.pixels:
            raise UploadError(
                f"The pictures add up to more than {budget.pixels // 1_000_000:,} megapixels, "
                "more than this app decodes for one upload; upload fewer or smaller pictures."
            )
        pictures[path] = data
    _check_no_clash(pictures)
    return pictures


def _safe_path(name: str) -> PurePosixPath | None:
    """The relative path a name stands for; an error if it would leave its folder; None for hidden files."""
    if any(ord(c) < 32 for c in name):
        raise UploadError(
            f"A file name in the upload holds a control character ({name[:60]!r}); rename it and upload again."
        )
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UploadError(
            f"The path {name!r} inside the upload leaves its folder; such an archive is "
            "refused. Pack the pictures with paths relative to one folder."
        )
    if len(path.parts) > MAX_DEPTH:
        raise UploadError(
            f"A picture in the upload lies {len(path.parts) - 1} folders deep, more than {MAX_DEPTH - 1}; upload "
            "train/<class>/ and test/<class>/ folders, or class folders, nearer the top."
        )
    if any(len(part.encode()) > MAX_NAME_BYTES for part in path.parts):
        raise UploadError(
            f"A file or folder name in the upload is longer than {MAX_NAME_BYTES} bytes, more than the server's "
            "file system allows; rename it and upload again."
        )
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return None
    return path


def _check_no_clash(pictures: dict[PurePosixPath, bytes]) -> None:
    """Refuse an upload in which one name is both a picture and a folder (a zip can hold both)."""
    folders = {parent for path in pictures for parent in path.parents}
    if clash := next((path for path in pictures if path in folders), None):
        raise UploadError(
            f"The upload holds a picture and a folder both named {clash.name!r}; rename one and upload again."
        )


def _strip_common_folder(pictures: dict[PurePosixPath, bytes]) -> dict[PurePosixPath, bytes]:
    """Drop the folder everything sits in ("photos/cats/1.jpg" -> "cats/1.jpg"), but never a
    train/ or test/ folder or a class folder."""
    while True:
        firsts = {p.parts[0] for p in pictures if len(p.parts) > 2}
        if len(firsts) != 1 or any(len(p.parts) <= 2 for p in pictures) or firsts & {"train", "test"}:
            return pictures
        pictures = {PurePosixPath(*p.parts[1:]): data for p, data in pictures.items()}


def _write(folder: Path, pictures: dict[PurePosixPath, bytes]) -> None:
    for path, data in pictures.items():
        target = folder.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _too_big(start: str, budget: Budget) -> str:
    allowed = (
        "what this seat may still upload" if budget.bytes < MAX_UNPACKED_BYTES else "this app's limit for one upload"
    )
    return (
        f"{start} more than {budget.bytes / 1_000_000:,.1f} MB, {allowed} (a zip bomb, or simply too "
        f"many pictures); nothing was written."
    )


MAX_UPLOAD_PIXELS = 40_000_000  # refuse decompression bombs long before memory runs out


class ImageInputError(ValueError):
    """An uploaded file cannot be used as a picture; the message says why."""


def image_from_bytes(data: bytes) -> tuple[torch.Tensor, list[str]]:
    """An uploaded PNG/JPEG -> uint8 (3,32,32) and notes on what was changed (mode, size)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageInputError("The file is empty; upload a PNG or JPEG picture.")
    notes = []
    try:
        with open_image(io.BytesIO(data)) as img:  # the header only, so far
            if img.width * img.height > MAX_UPLOAD_PIXELS:
                raise ImageInputError(
                    f"This picture has {img.width * img.height / 1e6:.0f} megapixels; upload one "
                    f"under {MAX_UPLOAD_PIXELS // 1_000_000}."
                )
            if img.mode != "RGB":
                notes.append(f"converted from {img.mode} to RGB")
            rgb = img.convert("RGB")
            if rgb.size != (32, 32):
                notes.append(f"resized from {rgb.size[0]}x{rgb.size[1]} to 32x32, the size the model was trained on")
                rgb = rgb.resize((32, 32), Image.BILINEAR)
            array = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ImageInputError("This file is not a picture this app can read; upload a PNG or JPEG.") from None
    except Image.DecompressionBombError:
        raise ImageInputError(
            f"This picture is far too large; upload one under {MAX_UPLOAD_PIXELS // 1_000_000} megapixels."
        ) from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1), notes
