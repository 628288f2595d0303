"""Measurements behind the design documents (``python -m studies.<name> --profile P``).

Each module measures one question about a profile's models as the runtime scores them (thresholds set
on the validation split as ``python -m export`` sets them, figures read on the test split) and prints
the table that ``docs/results.md`` or ``docs/gate_design.md`` quotes; the studies of the deployed
models also write it to ``results/<profile>/<name>.json``. ``gate_check`` reads a trial gate's Keras
weights before any export and writes nothing. Nothing in the product imports this package: the
runtime, the export and the dashboard run without it (``tests/test_layering.py``).
"""
