"""What a curious student's upload can cost the server: bounded by what it unpacks to (bytes and
pixels), refused in one sentence, and leaving nothing behind. Real archives, limits scaled down."""

import io
import zipfile

import pytest
from PIL import Image

from cae.data import cache_dir, load_dataset
from cae.uploads import Budget, ImageInputError, UploadError, image_from_bytes, unpack_upload
from cae.words import code_span
from tests.conftest import zip_of


def picture(size: tuple[int, int], kind: str = "PNG", colour=(0, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


def leftovers() -> list:
    folder = cache_dir() / "uploads"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp")) if folder.exists() else []


def test_a_zip_of_black_bitmaps_is_refused_on_what_it_unpacks_to_not_on_its_size():
    """The probe's bomb: a small zip of black BMPs; the seat's 2 MB counts the unpacked bytes."""
    black = picture((600, 600), "BMP")  # 1.08 MB each, unpacked
    bomb = zip_of({f"c{c}/{i}.bmp": black for c in range(2) for i in range(4)})
    assert len(bomb) < 100_000 and 8 * len(black) > 8_000_000
    with pytest.raises(UploadError, match=r"more than 2\.0 MB, what this seat may still upload"):
        unpack_upload([("bomb.zip", bomb)], Budget(bytes=2_000_000))
    assert leftovers() == []


def test_pictures_whose_headers_add_up_past_the_pixel_budget_are_refused_before_any_is_decoded():
    """A few kilobytes of PNGs that would decode to many megapixels cost no decoding CPU."""
    big = picture((3000, 2000))  # 6 megapixels of one colour: a tiny PNG
    archive = zip_of({f"c{c}/{i}.png": big for c in range(2) for i in range(3)})
    with pytest.raises(UploadError, match="more than 20 megapixels"):
        unpack_upload([("many-pixels.zip", archive)], Budget(pixels=20_000_000))


def test_a_damaged_zip_is_one_sentence():
    good = zip_of({f"c{c}/{i}.png": picture((40, 40), colour=(i * 50, c * 90, 0)) for c in range(2) for i in range(3)})
    first = zipfile.ZipFile(io.BytesIO(good)).infolist()[0]
    start = first.header_offset + 30 + len(first.filename) + 4  # inside the first member's compressed data
    damaged = good[:start] + bytes(b ^ 0xFF for b in good[start : start + 40]) + good[start + 40 :]
    with pytest.raises(UploadError, match="zip is damaged|not a readable zip"):
        unpack_upload([("damaged.zip", damaged)])
    assert leftovers() == []


def test_a_file_name_with_a_nul_is_refused_and_leaves_no_folder():
    files = [
        ("mine/a/1.png", picture((8, 8))),
        ("mine/a/2\x00.png", picture((8, 8))),
        ("mine/b/1.png", picture((8, 8))),
    ]
    with pytest.raises(UploadError, match="control character"):
        unpack_upload(files)
    assert leftovers() == []


def test_a_tiff_named_jpg_is_left_out_the_loader_decodes_only_what_it_advertises():
    tiff = picture((16, 16), "TIFF")
    with pytest.raises(UploadError, match="holds no pictures"):
        unpack_upload([("mine/a/1.jpg", tiff), ("mine/b/1.jpg", tiff)])


def test_the_try_page_refuses_a_picture_over_its_stated_limit_without_a_process_wide_setting():
    from PIL import Image as PILImage

    before = PILImage.MAX_IMAGE_PIXELS
    with pytest.raises(ImageInputError, match="45 megapixels; upload one under 40"):
        image_from_bytes(picture((7500, 6000)))  # 45 MP: under PIL's own 2x bomb limit, over ours
    assert PILImage.MAX_IMAGE_PIXELS == before


def test_class_names_from_folders_are_shown_as_plain_words(tmp_path):
    """A folder named like a link or an HTML tag becomes plain words on every page and chart."""
    names = ["[Log in again](https:evil.example)", '<a href="https:evil.example">Click here']
    for split, n in (("train", 3), ("test", 1)):
        for c, name in enumerate(names):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}.png").write_bytes(picture((32, 32), colour=(c * 200, i * 60, 0)))
    classes = load_dataset(tmp_path).classes
    assert classes == ["a href https evil example Click here", "Log in again https evil example"]  # folders sorted
    assert not any(ch in "".join(classes) for ch in "[]()<>:./*_`")


def test_a_file_name_shown_in_a_sentence_is_a_code_span():
    assert code_span("[Log in](https://evil.example) `x`.zip") == "`[Log in](https://evil.example) 'x'.zip`"


def test_names_the_file_system_cannot_hold_are_sentences_without_server_paths():
    """The probe's 300-character file name and its file-and-folder of one name: refused before
    anything is written, in a sentence that names no folder on the server."""
    dot = picture((4, 4))
    long_name = zip_of({f"cats/{'x' * 300}.png": dot, "dogs/1.png": dot})
    with pytest.raises(UploadError, match="longer than 255 bytes") as refused:
        unpack_upload([("long.zip", long_name)])
    clash = zip_of({"cats/a.png": dot, "cats/a.png/b.png": dot, "dogs/1.png": dot})
    with pytest.raises(UploadError, match="a picture and a folder both named 'a.png'") as clashed:
        unpack_upload([("clash.zip", clash)])
    for said in (str(refused.value), str(clashed.value)):
        assert str(cache_dir()) not in said and "/" not in said.replace("train/<class>/", "")
    assert leftovers() == []


def test_a_zip_thousands_of_folders_deep_is_refused_at_its_first_picture():
    """Depth 3,000 with 16 pictures cost 20 s of stripping a shared top folder; now one sentence."""
    deep = "/".join(["d"] * 3000)
    archive = zip_of({f"{deep}/c{c}/{i}.png": picture((4, 4)) for c in range(2) for i in range(8)})
    with pytest.raises(UploadError, match="folders deep, more than 15"):
        unpack_upload([("deep.zip", archive)])


def test_tiny_pictures_are_charged_what_they_cost_the_disk_not_their_bytes():
    """The probe's 20,000 one-pixel images were charged 1.16 MB and took 144 MB: each file takes
    whole disk blocks and a 32x32x3 decoded copy. 1,000 of them (about 70 KB of PNG) now count
    1,000 x (4,096 + 3,072) bytes, past a 2 MB quota."""
    dot = picture((1, 1))
    archive = zip_of({f"c{c}/{i}.png": dot for c in range(2) for i in range(500)})
    assert 1000 * len(dot) < 200_000
    with pytest.raises(UploadError, match=r"more than 2\.0 MB, what this seat may still upload"):
        unpack_upload([("dots.zip", archive)], Budget(bytes=2_000_000))
    with pytest.raises(UploadError, match="more than 600 pictures, what this seat may still upload"):
        unpack_upload([("dots.zip", archive)], Budget(files=600))
    assert leftovers() == []


def test_an_upload_is_decoded_by_the_worker_and_the_web_server_only_reads_its_cache(tmp_path, monkeypatch):
    """The probe's 48 lossless 40 MP pictures cost the web server 54 s of CPU: decoding now happens
    in the training worker (the Data page's "decode_upload" task), which leaves the decoded cache;
    the web server's process then loads the upload without decoding one picture."""
    from cae import data
    from cae.jobs import DONE, manager_for

    pictures = {f"c{c}/{i}.png": picture((8, 8), colour=(200 * c, 10 * i, 0)) for c in range(2) for i in range(10)}
    folder = unpack_upload([("p.zip", zip_of(pictures))])
    manager = manager_for(tmp_path / "runs")
    job = manager.wait(manager.compute("decode_upload", {"origin": str(folder)}).id, 300)
    assert job.state == DONE, job.error

    def decode_here(path):
        raise AssertionError(f"the web server decoded {path}")

    monkeypatch.setattr(data, "decode_image", decode_here)
    dataset = load_dataset(str(folder), download=False)
    assert len(dataset.train) + len(dataset.test) == 20 == job.result["train"] + job.result["test"]
