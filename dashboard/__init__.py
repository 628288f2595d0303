"""Offline Streamlit dashboard over ``edge_runtime`` (no model logic lives here).

Pages are in ``dashboard/views``; plain-Python helpers that are worth unit-testing
(config and path safety, rendering, tuning maths, model card checks, live-loop
control) are small modules next to this file. Start with ``python -m dashboard``.
"""

from edge_runtime.extras import require

require("the dashboard", "dashboard", "streamlit", "pandas")
