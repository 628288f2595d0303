"""Measurements behind the design documents (``python -m studies.<name> --profile P``).

Each module measures one question about the deployed models of a profile, as the runtime scores
them (thresholds set on the validation split as ``python -m export`` sets them, figures read on the
test split), writes ``results/<profile>/<name>.json`` and prints the table that
``docs/results.md`` or ``docs/gate_design.md`` quotes. Nothing in the product imports this
package: the runtime, the export and the dashboard run without it.
"""
