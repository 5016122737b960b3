"""Data: choose where images come from, see samples of every class and the counts per split."""

import os

import streamlit as st
import torch

from cae.data import SAMPLE
from cae.figures import sample_grid
from app_pages._shared import current_dataset, data_source

st.title("Data")
st.markdown("The autoencoder never sees a label; the classifier does. Pick the images to work with.")

SOURCES = {"Bundled sample (1,000 + 200 CIFAR-10 images, offline)": "sample",
           "Image folder (train/<class>/, test/<class>/)": "folder",
           "CIFAR-10 via torchvision (downloads ~170 MB when online)": "cifar10"}
current = data_source()
kind = "sample" if current == SAMPLE else "folder"
choice = st.radio("Source", list(SOURCES), index=list(SOURCES.values()).index(kind), key="data_kind")
folder_default = current if current != SAMPLE else os.environ.get("CAE_DATA", "")
if SOURCES[choice] == "folder":
    path = st.text_input("Folder path", folder_default, key="data_path",
                         help="A folder with train/<class>/ and test/<class>/ subfolders of PNG, JPEG or "
                              "BMP images. Images that are not 32×32 are resized to 32×32.")
elif SOURCES[choice] == "cifar10":
    path = st.text_input("Download folder", "data", key="data_download")
else:
    path = SAMPLE
if st.button("Use this data", key="use_data", type="primary"):
    st.session_state.data_source = path.strip() or SAMPLE
    st.rerun()

dataset = current_dataset()
if dataset is None:
    st.info("Until then the app keeps working with the pretrained runs; the bundled sample is always "
            "available above.")
    st.stop()

st.subheader(dataset.name)
for note in dataset.notes:
    st.caption(note)
counts = dataset.class_counts()
left, right = st.columns([1, 2])
with left:
    st.dataframe(counts, hide_index=True, width="stretch")
    st.metric("Images", f"{len(dataset.train):,} train / {len(dataset.test):,} test")
    st.caption(f"Fingerprint {dataset.fingerprint[:16]}… — the same images anywhere are the same dataset, "
               "so runs trained on them are found again.")
with right:
    seed = st.number_input("Shuffle samples (seed)", 0, 10_000, 0, key="data_seed")
    order = torch.randperm(len(dataset.train), generator=torch.Generator().manual_seed(int(seed)))
    st.plotly_chart(sample_grid(dataset.train.images[order], dataset.train.labels[order], dataset.classes),
                    width="stretch")
