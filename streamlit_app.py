"""CAE Explorer: the router. Page config, navigation over app_pages/, and the sidebar every page shares."""

import streamlit as st

from app_pages._shared import (current_dataset, dataset_label, device_label, run_label, runs,
                               selected_run_path, view_run)

st.set_page_config(page_title="CAE Explorer", page_icon=":material/blur_on:", layout="wide")

pages = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/school:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/kernels.py", title="Kernels", icon=":material/grid_on:"),
    st.Page("app_pages/classifier.py", title="Classifier", icon=":material/bar_chart:"),
    st.Page("app_pages/try_image.py", title="Try an image", icon=":material/image_search:"),
]
page = st.navigation(pages)

# Streamlit forgets a widget's value when a page without it runs; re-assigning keeps a learner's
# Train and variant settings while they look at other pages.
KEPT_SETTINGS = ("latent_dim", "leak", "upsample", "ae_epochs", "clf_epochs", "batch_size", "lr", "clf_lr",
                 "subset", "limit_custom", "test_limit", "precision", "seed", "scratch_baseline", "flip",
                 "variant_epochs", "variant_lr", "variant_labels", "variant_mode", "kernel_norm")
for key in KEPT_SETTINGS:
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]

with st.sidebar:
    st.caption(f"**Device:** {device_label()}")
    st.caption(f"**Data:** {dataset_label(current_dataset(show_error=False))}")
    infos = runs()
    if infos:
        paths = [str(i.path) for i in infos]
        if selected_run_path() not in paths:  # first open, or the run was deleted
            view_run(paths[0])
        st.session_state.run_picker = selected_run_path()
        st.selectbox("Run being viewed", paths, format_func=lambda p: run_label(infos[paths.index(p)]),
                     key="run_picker", on_change=lambda: view_run(st.session_state.run_picker))
        if description := infos[paths.index(selected_run_path())].description:
            st.caption(description)
    else:
        st.caption("**Run:** none yet — train one on the Train page.")

page.run()
