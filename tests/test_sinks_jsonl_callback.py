"""JSON-lines and reject-callback sinks."""

import io
import json

from edge_runtime.sinks import CallbackSink, JsonlSink, Record


def test_jsonl_one_object_per_line():
    stream = io.StringIO()
    sink = JsonlSink(stream)
    sink.write([Record("cam", "1", "ok", score=0.1), Record("cam", "2", "error", error="truncated")])
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["frame_id"] for line in lines] == ["1", "2"]
    assert json.loads(lines[1])["error"] == "truncated"
    assert json.loads(lines[0])["score"] == 0.1


def test_callback_fires_only_for_rejects():
    fired = []
    sink = CallbackSink(fired.append)
    sink.write([Record("cam", "1", "ok"), Record("cam", "2", "defect"), Record("cam", "3", "warn"),
                Record("cam", "4", "error")])
    assert [r.frame_id for r in fired] == ["2"] and sink.calls == 1


def test_callback_custom_predicate():
    fired = []
    CallbackSink(fired.append, predicate=lambda r: r.verdict in ("warn", "defect")).write(
        [Record("c", "1", "warn"), Record("c", "2", "ok")])
    assert [r.frame_id for r in fired] == ["1"]


def test_a_failing_hook_call_does_not_skip_the_rejects_after_it():
    import pytest

    from edge_runtime.sinks.callback import RejectHookError

    fired = []

    def eject(record):
        fired.append(record.frame_id)
        if record.frame_id == "1":
            raise ConnectionError("PLC did not answer")

    with pytest.raises(RejectHookError, match="failed for 1 record.*frame 1 of cam: PLC did not answer") as caught:
        CallbackSink(eject).write([Record("cam", str(i), "defect") for i in range(1, 4)])
    assert fired == ["1", "2", "3"]  # every ejector firing was attempted
    assert [record.frame_id for record, _ in caught.value.failures] == ["1"]
