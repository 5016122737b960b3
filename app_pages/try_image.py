"""Try an image: a test image (by class, by number or at random) or your own picture, its
reconstruction, the error map, and what the classifier makes of it."""

import random

import streamlit as st

from app_pages import state
from app_pages._shared import current_dataset, current_run, show_chart, show_run_summary
from cae.contrastive import NO_RECONSTRUCTIONS, rebuilds
from cae.explain import class_probabilities, reconstruct
from cae.figures import picture, probability_bars, reconstruction_panel
from cae.uploads import ImageInputError, image_from_bytes
from cae.words import with_article


def pick_test_image(dataset, left, mid, right):
    """A test image chosen by class and number, or at random; (image, its class index, caption)."""
    classes = ["any class", *dataset.classes]
    cls = left.selectbox("Class", classes, key="try_class", persist_state="session")
    pool = (
        range(len(dataset.test))
        if cls == "any class"
        else (dataset.test.labels == dataset.classes.index(cls)).nonzero().flatten().tolist()
    )
    pool = list(pool)
    right.write("")  # line the button up with the inputs
    if right.button("Random", key="try_random"):
        state.set_widget("try_number", random.randrange(len(pool)))
    state.set_widget("try_number", min(state.widget("try_number", 0), len(pool) - 1))
    number = mid.number_input(f"Image (0–{len(pool) - 1})", 0, len(pool) - 1, key="try_number", persist_state="session")
    index = pool[int(number)]
    truth = int(dataset.test.labels[index])
    name = dataset.classes[truth]
    return dataset.test.images[index], truth, f"Test image {index}: {with_article(name)}."


st.title("Try an image")
run = current_run()
if run is None:
    st.stop()
show_run_summary(run)
choose, left, mid, right = st.columns([2, 2, 2, 1])  # one row of controls: the pictures fit the first screen
source = choose.radio("Image", ["a test image", "upload your own"], key="try_source", persist_state="session")
image, truth, caption = None, None, ""
if source == "a test image":
    dataset = current_dataset()
    if dataset is not None:
        image, truth, caption = pick_test_image(dataset, left, mid, right)
        if list(dataset.classes) != run.classes:
            truth = None  # the run's classes are others: no right or wrong
else:
    with st.container():
        upload = st.file_uploader(
            "PNG or JPEG, up to 10 MB; resized to 32×32", type=["png", "jpg", "jpeg"], key="try_upload"
        )
    if upload is not None:
        try:
            image, notes = image_from_bytes(upload.getvalue())
            state.set_uploaded_picture(upload.getvalue())  # the Latent space page places it on its map
            caption = "Your picture" + (f" ({'; '.join(notes)})." if notes else ".")
        except ImageInputError as exc:
            st.error(str(exc))

if image is not None:
    left, right = st.columns([3, 2])  # the prediction beside the pictures, not below the fold
    with left:
        st.caption(caption)
        if rebuilds(run.metrics["config"]):
            recon = reconstruct(run.autoencoder, image[None])[0]
            show_chart(st, reconstruction_panel(image.float() / 255, recon), width="stretch")
        else:
            st.image(picture(image), width=160, alt="your picture at 32×32")
            st.info(NO_RECONSTRUCTIONS)
    with right:
        if run.classifier is None:
            st.info("This run has no classifier (0 classifier epochs), so there is no prediction.")
        else:
            probs = class_probabilities(run.classifier, image[None])[0].tolist()
            guess = run.classes[max(range(len(probs)), key=probs.__getitem__)]
            if truth is not None:
                right_or_wrong = (
                    ":green[**right**]"
                    if run.classes[truth] == guess
                    else f":red[**wrong**] (it is {with_article(run.classes[truth])})"
                )
                st.markdown(f"Prediction: **{guess}** — {right_or_wrong}")
            else:
                st.markdown(f"Prediction: **{guess}**")
            show_chart(st, probability_bars(probs, run.classes, truth), width="stretch")
