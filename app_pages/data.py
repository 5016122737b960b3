"""Data: choose where images come from (the sample, a folder, CIFAR-10, your own photos), see samples
of every class and the counts per split."""

import os
import shutil
from pathlib import Path

import streamlit as st
import torch

from app_pages._shared import current_dataset, data_source, show_chart, use_data
from app_pages.caches import TaskError, cached_dataset, computed
from app_pages.rights import caps, seat, seat_ledger
from cae.classroom import upload_budget, upload_cost
from cae.data import CIFAR10_FOLDER, SAMPLE, UPLOADS, DataError, cache_dir, download_cifar10
from cae.figures import sample_grid
from cae.files import absolute
from cae.uploads import LIMITS, MAX_UPLOAD_MB, Budget, UploadError, unpack_upload
from cae.words import code_span

SOURCES = {
    "Bundled sample (1,000 + 200 CIFAR-10 images, offline)": "sample",
    "Image folder on this computer (train/<class>/ and test/<class>/, or class folders)": "folder",
    "CIFAR-10 (downloads ~170 MB into a folder when online)": "cifar10",
    "Your own photos (upload a folder or a zip)": "upload",
}
CLASS_DATA = "The class's data (chosen by the lecturer)"


def sources() -> dict[str, str]:
    """What a learner may choose; in classroom mode no server path is typed or downloaded into:
    the sample, the lecturer's $CAE_DATA and the seat's own uploads."""
    if seat() is None:
        return SOURCES
    chosen = {label: kind for label, kind in SOURCES.items() if kind in ("sample", "upload")}
    return {**({CLASS_DATA: "class"} if os.environ.get("CAE_DATA") else {}), **chosen}


def choose_folder(current: str) -> None:
    path = st.text_input(
        "Folder path",
        current if current != SAMPLE else os.environ.get("CAE_DATA", ""),
        key="data_path",
        help="train/<class>/ and test/<class>/ subfolders, or one folder per class (split "
        "80/20). PNG, JPEG, WebP or BMP; pictures that are not 32×32 are resized.",
    )
    if st.button("Use this folder", key="use_data", type="primary"):
        use_data(path)
        st.rerun()


def choose_cifar10() -> None:
    folder = Path(st.text_input("Folder for CIFAR-10", "data", key="data_download")).expanduser()
    if (folder / CIFAR10_FOLDER).is_dir():
        if st.button("Use CIFAR-10 from this folder", key="use_data", type="primary"):
            use_data(str(folder))
            st.rerun()
        return
    st.caption(f"{folder.resolve()} holds no CIFAR-10 yet.")
    if st.button("Download CIFAR-10 into this folder", key="download_cifar", type="primary"):
        bar = st.progress(0.0, text="Downloading CIFAR-10…")
        try:
            download_cifar10(
                folder,
                lambda done, total: bar.progress(
                    min(done / total, 1.0) if total else 0.0, text=f"Downloading CIFAR-10: {done / 1e6:.0f} MB"
                ),
            )
        except DataError as exc:
            st.error(f"{exc} Offline, the bundled sample and any image folder still work.")
            return
        use_data(str(folder))
        st.rerun()


DECODE_WAIT = 900  # seconds an upload's decoding may take in the worker


def choose_upload() -> None:
    st.caption(
        f"One subfolder of pictures per class (split 80/20), or train/<class>/ and test/<class>/. "
        f"Limits: {LIMITS}. Unpacked into the app's cache folder, never next to your files."
    )
    folder = st.file_uploader(
        "A folder of photos", accept_multiple_files="directory", key="upload_folder", max_upload_size=MAX_UPLOAD_MB
    )
    archive = st.file_uploader("…or a zip of one", type=["zip"], key="upload_zip", max_upload_size=MAX_UPLOAD_MB)
    files = [(archive.name, archive.getvalue())] if archive else [(f.name, f.getvalue()) for f in folder or []]
    budget = Budget()
    if seat() is not None:  # the quota counts what the server spends, checked before anything is written
        used, quota = seat_ledger().upload_bytes(seat()), caps().upload_mb * 1_000_000
        everyone, server = seat_ledger().upload_bytes(), caps().upload_mb_total * 1_000_000
        pictures, pixels = seat_ledger().upload_use(seat())
        st.caption(
            f"This seat has used {used / 1e6:.1f} MB of its {caps().upload_mb} MB (on the server's disk), "
            f"{pictures:,} of its {caps().upload_files:,} pictures and {pixels / 1e6:,.0f} of its "
            f"{caps().upload_megapixels:,} megapixels."
        )
        budget = upload_budget(seat_ledger(), seat(), caps())
        if server - everyone < quota - used:
            st.caption(
                f"The class's uploads together may take {caps().upload_mb_total:,} MB; "
                f"{max(0, server - everyone) / 1e6:.1f} MB are left."
            )
    if files and st.button("Use these photos", key="use_upload", type="primary"):
        chosen = code_span(archive.name) if archive else f"the folder you chose ({len(files)} files)"
        try:
            folder = unpack_upload(files, budget)
        except UploadError as exc:
            st.error(f"{chosen}: {exc}")
            return
        try:  # decoded by the worker, never by this web server; read before use: a failure changes nothing
            with st.spinner("Decoding the pictures in the training worker…"):
                if computed("decode_upload", {"origin": str(folder)}, wait=DECODE_WAIT) is None:
                    raise DataError(f"Decoding took longer than {DECODE_WAIT} s; upload fewer pictures.")
            cached_dataset(str(folder))  # the worker's decoded cache
        except (DataError, TaskError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            st.error(f"{chosen}: {str(exc).replace(str(folder), 'the upload')} The data in use is unchanged.")
            return
        if seat() is not None:
            seat_ledger().record_upload(seat(), folder, *upload_cost(folder))
        use_data(str(folder))
        st.rerun()


st.title("Data")
st.markdown("The autoencoder never sees a label; the classifier does. Pick the images to work with.")
current = data_source()
kind = (
    "sample"
    if current == SAMPLE
    else "upload"
    if Path(current).parent == cache_dir() / UPLOADS
    else "class"
    if seat() is not None
    else "cifar10"
    if (Path(current) / CIFAR10_FOLDER).is_dir()
    else "folder"
)
offered = sources()
choice = offered[st.radio("Source", list(offered), index=list(offered.values()).index(kind), key="data_kind")]
if choice == "class":
    if current != str(absolute(os.environ["CAE_DATA"])) and st.button(
        "Use the class's data", key="use_data", type="primary"
    ):
        use_data(os.environ["CAE_DATA"])
        st.rerun()
elif choice == "sample":
    if current != SAMPLE and st.button("Use the bundled sample", key="use_data", type="primary"):
        use_data(SAMPLE)
        st.rerun()
elif choice == "folder":
    choose_folder(current)
elif choice == "cifar10":
    choose_cifar10()
else:
    choose_upload()

dataset = current_dataset()
if dataset is None:
    st.info("Until then the app keeps working with the pretrained runs; the bundled sample is always available above.")
    st.stop()

st.header(f"In use: {dataset.name}")
if dataset.source == "folder":
    st.caption(f"Folder: {current}")
for note in dataset.notes:
    st.caption(note)
counts = dataset.class_counts()
left, right = st.columns([1, 2])
with left:
    # its height given (Streamlit's 35 px rows, the header one of them): the space is kept while the
    # table's code loads, so the lines below it do not jump down (layout shift, bench/lighthouse.py)
    st.dataframe(counts, hide_index=True, width="stretch", height=35 * (len(counts) + 1) + 3)
    st.metric("Images", f"{len(dataset.train):,} train / {len(dataset.test):,} test")
    st.caption(
        f"Fingerprint {dataset.fingerprint[:16]}… — the same images anywhere are the same dataset, "
        "so runs trained on them are found again."
    )
with right:
    seed = st.number_input("Shuffle samples (seed)", 0, 10_000, 0, key="data_seed")
    order = torch.randperm(len(dataset.train), generator=torch.Generator().manual_seed(int(seed)))
    show_chart(
        st, sample_grid(dataset.train.images[order], dataset.train.labels[order], dataset.classes), width="stretch"
    )
