"""Streamlit entry point: ``streamlit run dashboard/app.py`` (or ``python -m dashboard``)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import runtime  # noqa: E402

st.set_page_config(page_title="Steel surface inspection", page_icon=":material/precision_manufacturing:", layout="wide")

with st.sidebar:
    st.markdown("### Steel surface inspection")
    try:
        names, default = runtime.profile_names(runtime.read_manifest())
    except Exception as exc:  # no models yet: pages say what is missing
        names, default = [], None
        st.warning(f"No model manifest: {exc}")
    if names:
        configured = runtime.get_config().profile
        start = configured if configured in names else default
        st.selectbox("Model profile", names, index=names.index(start) if start in names else 0, key="profile")

_VIEWS = Path(__file__).parent / "views"
pages = [
    st.Page(_VIEWS / "inspect.py", title="Inspect", icon=":material/image_search:", default=True),
    st.Page(_VIEWS / "live.py", title="Live line", icon=":material/conveyor_belt:"),
    st.Page(_VIEWS / "history.py", title="History", icon=":material/history:"),
    st.Page(_VIEWS / "tuning.py", title="Threshold tuning", icon=":material/tune:"),
    st.Page(_VIEWS / "model_card.py", title="Model card", icon=":material/badge:"),
]
st.navigation(pages).run()
