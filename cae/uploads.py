"""Photos a user uploads — a folder or a zip, of train/<class>/ and test/<class>/ or of class folders
only — unpacked into the cache as an image folder, within stated limits."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath

from cae.data import IMAGE_EXTENSIONS, IMAGE_KINDS, MAX_PIXELS, UPLOADS, DataError, cache_dir
from cae.files import WriteError, write_atomically

MAX_UPLOAD_MB = 200               # per uploaded file (the zip), set on the uploader widget
MAX_FILES = 20_000                # pictures in one upload
MAX_UNPACKED_BYTES = 1_000_000_000  # all pictures together, as unpacked
LIMITS = (f"at most {MAX_UPLOAD_MB} MB per uploaded file, {MAX_FILES:,} pictures and "
          f"{MAX_UNPACKED_BYTES // 1_000_000:,} MB unpacked in all, {MAX_PIXELS // 1_000_000} megapixels "
          f"per picture ({IMAGE_KINDS})")


class UploadError(DataError):
    """An upload that cannot become an image folder; the message says why in one sentence."""


def unpack_upload(files: list[tuple[str, bytes]]) -> Path:
    """Uploaded files -> an image folder under the cache, named by its content (the same upload
    twice is one folder). `files` are (name, bytes): a folder's files with their paths inside it,
    or a single .zip."""
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        pictures = _from_zip(files[0][1])
    else:
        pictures = _pictures([(name, lambda data=data: data, len(data)) for name, data in files])
    if not pictures:
        raise UploadError(f"The upload holds no pictures ({IMAGE_KINDS}); upload a folder with one "
                          "subfolder of pictures per class.")
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
            raise UploadError(f"Cannot unpack the upload into {target.parent} ({exc}); set CAE_CACHE "
                              "to a writable folder with free space.") from None
    return target


def _from_zip(blob: bytes) -> dict[PurePosixPath, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile:
        raise UploadError("The uploaded file is not a readable zip archive.") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise UploadError(_too_big("The zip would unpack to"))
        return _pictures([(m.filename, lambda m=m: _read_capped(archive, m), m.file_size) for m in members])


def _read_capped(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its declared size (a zip can lie about it)."""
    with archive.open(member) as f:
        data = f.read(member.file_size + 1)
    if len(data) > member.file_size:
        raise UploadError(f"{member.filename!r} unpacks to more than the zip declares (a zip bomb); "
                          "the upload is refused.")
    return data


def _pictures(entries) -> dict[PurePosixPath, bytes]:
    """{safe relative path: bytes} of the picture files among (name, read, size) entries."""
    pictures: dict[PurePosixPath, bytes] = {}
    total = 0
    for name, read, size in entries:
        path = _safe_path(name)
        if path is None or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue  # folders' own files (.DS_Store, __MACOSX/…, notes) are left out
        if len(pictures) >= MAX_FILES:
            raise UploadError(f"The upload holds more than {MAX_FILES:,} pictures; upload fewer "
                              f"({LIMITS}).")
        total += size
        if total > MAX_UNPACKED_BYTES:
            raise UploadError(_too_big("The pictures add up to"))
        pictures[path] = read()
    return pictures


def _safe_path(name: str) -> PurePosixPath | None:
    """The relative path a name stands for; an error if it would leave its folder; None for hidden files."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UploadError(f"The path {name!r} inside the upload leaves its folder; such an archive is "
                          "refused. Pack the pictures with paths relative to one folder.")
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return None
    return path


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


def _too_big(start: str) -> str:
    return (f"{start} more than {MAX_UNPACKED_BYTES // 1_000_000:,} MB (a zip bomb, or simply too many "
            f"pictures); the limits are {LIMITS}.")
