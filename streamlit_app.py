"""CAE Explorer: the router. Page config, navigation over pages/, and the sidebar every page shares."""

import streamlit as st

from pages._shared import (current_dataset, dataset_label, device_label, run_label, runs,
                           selected_run_path)

st.set_page_config(page_title="CAE Explorer", page_icon=":material/blur_on:", layout="wide")

pages = [
    st.Page("pages/overview.py", title="Overview", icon=":material/school:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/kernels.py", title="Kernels", icon=":material/grid_on:"),
    st.Page("pages/classifier.py", title="Classifier", icon=":material/bar_chart:"),
    st.Page("pages/try_image.py", title="Try an image", icon=":material/image_search:"),
]
page = st.navigation(pages)

# A page that finished or loaded a run asks for it here, before the picker is drawn.
if "pending_run" in st.session_state:
    st.session_state.run_path = st.session_state.pop("pending_run") or None

with st.sidebar:
    st.caption(f"**Device:** {device_label()}")
    st.caption(f"**Data:** {dataset_label(current_dataset(show_error=False))}")
    infos = runs()
    if infos:
        paths = [str(i.path) for i in infos]
        if selected_run_path() not in paths:  # first open, or the run was deleted
            st.session_state.run_path = paths[0]
        st.selectbox("Run being viewed", paths, format_func=lambda p: run_label(infos[paths.index(p)]),
                     key="run_path")
    else:
        st.caption("**Run:** none yet — train one on the Train page.")

page.run()
