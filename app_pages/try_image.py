"""Try an image: a test image or your own picture, its reconstruction, the error map, and the class probabilities."""

import streamlit as st

from cae.explain import ImageInputError, class_probabilities, image_from_bytes, reconstruct
from cae.figures import probability_bars, reconstruction_panel
from app_pages._shared import current_dataset, current_run

st.title("Try an image")
run = current_run()
if run is None:
    st.stop()

source = st.radio("Image", ["a test image", "upload your own"], key="try_source", horizontal=True)
image, caption = None, ""
if source == "a test image":
    dataset = current_dataset()
    if dataset is not None:
        index = st.slider("Test image", 0, len(dataset.test) - 1, 0, key="try_index")
        image = dataset.test.images[index]
        caption = f"Test image {index}: a {dataset.classes[int(dataset.test.labels[index])]}."
else:
    upload = st.file_uploader("PNG or JPEG, up to 10 MB; resized to 32×32", type=["png", "jpg", "jpeg"],
                              key="try_upload")
    if upload is not None:
        try:
            image, notes = image_from_bytes(upload.getvalue())
            caption = "Your picture" + (f" ({'; '.join(notes)})." if notes else ".")
        except ImageInputError as exc:
            st.error(str(exc))

if image is not None:
    st.caption(caption)
    recon = reconstruct(run.autoencoder, image[None])[0]
    st.plotly_chart(reconstruction_panel(image.float() / 255, recon), width="stretch")
    if run.classifier is not None:
        probs = class_probabilities(run.classifier, image[None])[0].tolist()
        st.plotly_chart(probability_bars(probs, run.classes), width="stretch")
    else:
        st.info("This run has no classifier (0 classifier epochs), so there is no prediction.")
