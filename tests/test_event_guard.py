"""Malformed event payloads get a message (issue 24): too few values (a merge with too few picks) and a
click's event data without its index, checked before Gradio's own code fails on them with a bare "Error"."""

from __future__ import annotations

import json

import gradio as gr
import httpx
import pytest
from gradio.events import EventData

from app.web import page
from app.web import select_panel as select_ui
from app.web.event_guard import MALFORMED, check_event_data, guard_events
from tests.server import running_app


@pytest.mark.parametrize("data", [None, {"index": [3, 4]}, {"value": None}, "3,4", [3, 4]])
def test_a_click_without_its_index_and_value_is_refused_with_a_message(data):
    event = None if data is None else EventData(None, data)
    with pytest.raises(gr.Error, match="did not say what it was about"):
        check_event_data(select_ui.on_click, event)


def test_well_formed_event_data_and_handlers_without_event_data_pass():
    check_event_data(select_ui.on_click, EventData(None, {"index": "anything", "value": None}))  # the handler checks
    check_event_data(select_ui.on_photo, None)
    check_event_data(None, None)


def test_too_few_values_for_an_event_is_a_message():
    demo = guard_events(page.build())
    click = next(fn for fn in demo.fns.values() if fn.fn is select_ui.on_click)
    with pytest.raises(gr.Error, match="sent 2 of the 5 values this action needs"):
        demo.validate_inputs(click, [None, None])
    demo.validate_inputs(click, [None] * 5)


@pytest.mark.slow  # starts the app
def test_the_running_app_answers_malformed_events_with_the_message(tmp_path):
    """The raw queue protocol, as a hostile or out-of-date page speaks it: the message arrives, no traceback."""
    with running_app(tmp_path / "app") as app:
        config = httpx.get(app.url + "config", timeout=30).json()
        view = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "select-view")
        click = next(d["id"] for d in config["dependencies"] if [view, "select"] in d["targets"])
        short = completed(app.url, click, [None], {"index": [1, 2], "value": None})
        missing = completed(app.url, click, [None, None, "add", 0, []], {"index": [1, 2]})
        assert "sent 1 of the 5 values" in str(short["output"]) and not short["success"]
        assert MALFORMED in str(missing["output"]) and not missing["success"]
        assert "Traceback" not in app.log_text(), app.log_text()[-3000:]


def completed(url: str, fn_index: int, data: list, event_data: dict) -> dict:
    """Join the queue with a raw payload and return the event's ``process_completed`` message."""
    session = f"probe-{fn_index}-{len(data)}"
    joined = httpx.post(url + "gradio_api/queue/join", timeout=30, json={
        "data": data, "fn_index": fn_index, "session_hash": session, "event_data": event_data, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the event never completed")
