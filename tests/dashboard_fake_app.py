"""Streamlit entry for tests: the real dashboard with the model-free FakeInspector.

``streamlit run tests/dashboard_fake_app.py`` shows every page without trained models.
"""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

import dashboard_fakes  # noqa: E402
from dashboard import runtime  # noqa: E402

runtime.load_inspector = lambda *a, **k: dashboard_fakes.FakeInspector()
runpy.run_path(str(ROOT / "dashboard" / "app.py"), run_name="__main__")
