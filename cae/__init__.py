"""CAE Explorer's library: the lecture's convolutional autoencoder, data, training and runs.

Nothing here imports streamlit; the app (`streamlit_app.py`, `app_pages/`) only arranges what this builds.
"""

__version__ = "0.1.0"
