"""The studio as a public Space: ``/inpaint`` is its one MCP tool, every argument described, and
Gradio's operator routes (traffic monitoring, the reload stream, run history) are closed to visitors."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio.utils import get_function_description
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app import options
from app.web import canvas, page, serving, signatures
from tests.helpers import box_hole, run_async, textured
from tests.server import AppProcess, running_app

SCHEMA = "gradio_api/mcp/schema"


STREAMABLE_HTTP, SSE = "gradio_api/mcp/", "gradio_api/mcp/sse"  # the two transports Gradio 6.31 serves
#: What a visitor must not reach: Gradio's traffic statistics, the reload stream of ``gradio app.py``
#: (endless when open), the run-history page and its Hub routes, the screen-recording converter (ffmpeg).
#: (The dashboard, ``monitoring/<key>``,
#: Gradio itself refuses without the key printed in the server log.)
CLOSED = ["monitoring", "monitoring/summary", "gradio_api/dev/reload", "gradio_api/runs",
          "gradio_api/run-history/buckets", "gradio_api/run-history/records", "gradio_api/process_recording"]


def expected_arguments() -> dict[str, str | None]:
    """Every input of ``/inpaint`` and the description it must have (None: any non-empty text)."""
    return ({"image": None, "mask": None, "models": None} | {k.name: k.description for k in options.KNOBS}
            | {signatures.guide_parameter(kind): signatures.guide_description(kind) for kind in canvas.guide_kinds()})


def data_url(pixels: np.ndarray) -> str:
    """A PNG as a data URL: how an MCP client may hand a file to a Gradio tool."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_every_argument_of_inpaint_is_documented_from_its_declaration():
    """The docstring Gradio reads has one line per parameter; a knob's line is its help text and range."""
    endpoint = next(fn.fn for fn in page.build().fns.values() if fn.api_name == "inpaint")
    _, described, returns = get_function_description(endpoint)
    expected = expected_arguments()
    assert set(expected) <= set(described) and returns
    for name, text in expected.items():
        assert described[name], f"{name} has no description"
        assert text is None or described[name] == text, name
    for knob in options.KNOBS:
        assert described[knob.name].startswith(knob.help)
        assert knob.choices or f"from {knob.low} to {knob.high}" in described[knob.name]


def test_launch_serves_mcp_unless_told_not_to_and_always_closes_the_back_office(monkeypatch):
    """``INPAINT_MCP=0`` or ``mcp_server=False`` turns MCP off; a caller's middleware never replaces the closing one."""
    demo = gr.Blocks()
    monkeypatch.delenv("INPAINT_MCP", raising=False)
    assert serving.public_settings(demo, {})["mcp_server"] is True
    monkeypatch.setenv("INPAINT_MCP", "0")
    assert serving.public_settings(demo, {})["mcp_server"] is False
    monkeypatch.setenv("INPAINT_MCP", "1")
    settings = serving.public_settings(demo, {"mcp_server": False, "app_kwargs": {"middleware": ["theirs"]}})
    assert settings["mcp_server"] is False and settings["enable_monitoring"] is False
    assert settings["run_history"] is False
    assert settings["app_kwargs"]["middleware"][0] == "theirs"
    assert settings["app_kwargs"]["middleware"][1].cls is serving.ClosedRoutes
    assert serving.closed_routes(demo) == serving.BACK_OFFICE
    demo.dev_mode = True  # ``gradio app.py``: its page listens to the reload stream
    assert serving.closed_routes(demo) == ("/monitoring", "/gradio_api/process_recording")


def test_closed_routes_answer_404_for_the_path_and_below_it_only():
    async def ok(request):
        return PlainTextResponse("open")

    app = Starlette(routes=[Route("/{path:path}", ok)])
    client = TestClient(serving.ClosedRoutes(app, ("/monitoring",)))
    for path in ("/monitoring", "/monitoring/", "/monitoring/summary", "/monitoring%2Fsummary"):
        response = client.get(path)
        assert (response.status_code, response.text) == (404, "Not Found"), path
    for path in ("/monitoringx", "/gradio_api/info", "/"):
        assert client.get(path).text == "open", path


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[AppProcess]:
    """``python app.py`` as on a Space (nothing set, so MCP is on), after serving one ``/inpaint`` call
    (so the monitoring summary, were it open, would have something to tell)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("INPAINT_MCP", raising=False)
        with running_app(tmp_path_factory.mktemp("studio")) as app:
            _inpaint_once(app)
            yield app


@pytest.mark.slow
def test_mcp_schema_lists_only_the_inpaint_tool_with_every_argument_described(studio):
    tools = httpx.get(studio.url + SCHEMA, timeout=30).raise_for_status().json()
    # /select and /people (issue 17) and /text (issue 30) are tools too; this test is about /inpaint's arguments.
    assert sorted(tool["meta"]["endpoint_name"] for tool in tools) == ["inpaint", "people", "select", "text"]
    tools = [tool for tool in tools if tool["meta"]["endpoint_name"] == "inpaint"]
    assert tools[0]["description"].startswith("Erase the painted part of a photo")
    schema = tools[0]["inputSchema"]
    expected = expected_arguments()
    assert list(schema["properties"]) == list(expected)
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{name} has no description"
        assert expected[name] is None or prop["description"] == expected[name], name
    assert schema["required"] == ["image", "mask"]  # the guide strokes are optional, not a required "param_9"


@pytest.mark.slow
@pytest.mark.parametrize("transport", [STREAMABLE_HTTP, SSE])
def test_an_mcp_client_lists_the_one_tool(studio, transport):
    tools = run_async(_list_tools(studio.url + transport, sse=transport == SSE))
    assert sorted(tool.name for tool in tools) == ["api_inpaint", "api_people", "api_select", "api_text"]
    assert all(prop["description"] for tool in tools for prop in tool.inputSchema["properties"].values())


@pytest.mark.slow
def test_an_mcp_client_erases_with_the_tool(studio):
    photo, hole = textured(64, 64), box_hole(64, 64, 10, 30, 10, 30).astype(np.uint8) * 255
    arguments = {"image": data_url(photo), "mask": data_url(hole), "models": ["telea"], "margin": 16}
    result = run_async(_call_tool(studio.url + STREAMABLE_HTTP, "api_inpaint", arguments))
    assert not result.isError and "telea.png" in result.content[0].text


@pytest.mark.slow
def test_every_tool_declares_valid_json_schema(studio):
    """Issue 24: ``/select``'s points and box were ``{"type": {}}``, which MCP clients refuse to call."""
    from jsonschema import Draft202012Validator

    for tool in httpx.get(studio.url + SCHEMA, timeout=30).raise_for_status().json():
        Draft202012Validator.check_schema(tool["inputSchema"])  # raises SchemaError naming the bad part
    select = next(t for t in tools_of(studio) if t["meta"]["endpoint_name"] == "select")["inputSchema"]
    valid = Draft202012Validator(select)
    assert valid.is_valid({"image": "x", "points": [[10, 20, 1]], "box": [1, 2, 30, 40]})
    assert not valid.is_valid({"image": "x", "points": [[10]]})


@pytest.mark.slow
def test_an_mcp_client_selects_with_the_tool(studio):
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[20:40, 30:60] = (220, 40, 40)  # a red block on black: GrabCut selects it from one click
    arguments = {"image": data_url(photo), "points": [[45, 30, 1]], "box": None, "grow": 0}
    result = run_async(_call_tool(studio.url + STREAMABLE_HTTP, "api_select", arguments))
    assert not result.isError, result.content
    text = " ".join(getattr(part, "text", "") for part in result.content)
    assert "selection.png" in text and "grabcut" in text
    bad = run_async(_call_tool(studio.url + STREAMABLE_HTTP, "api_select", arguments | {"grow": 10**400}))
    assert bad.isError and "Grow must be a number from 0 to 64" in str(bad.content)


def tools_of(app: AppProcess) -> list[dict]:
    return httpx.get(app.url + SCHEMA, timeout=30).raise_for_status().json()


@pytest.mark.slow
@pytest.mark.parametrize("path", CLOSED)
def test_back_office_is_closed_to_visitors(studio, path):
    """404/403 with a body that says nothing (an open reload stream would never end: the read times out)."""
    with httpx.stream("GET", studio.url + path, timeout=10) as response:
        body = response.read()[:2000].decode(errors="replace") if response.status_code < 500 else ""
    assert response.status_code in (403, 404), f"{path}: {response.status_code} {body[:300]}"
    assert len(body) < 200 and "inpaint" not in body.lower(), body


@pytest.mark.slow
def test_the_page_and_the_api_stay_open(studio):
    for path in ("", "config", "gradio_api/info"):
        assert httpx.get(studio.url + path, timeout=30).status_code == 200, path
    assert "/inpaint" in httpx.get(studio.url + "gradio_api/info", timeout=30).json()["named_endpoints"]


@pytest.mark.slow
def test_mcp_can_be_turned_off(tmp_path):
    with running_app(tmp_path / "app", INPAINT_MCP="0") as app:
        for path in (SCHEMA, STREAMABLE_HTTP, SSE):
            assert httpx.get(app.url + path, timeout=10).status_code == 404, path
        info = httpx.get(app.url + "gradio_api/info", timeout=30)
        assert info.status_code == 200 and "/inpaint" in info.json()["named_endpoints"]
        assert "MCP" not in app.log_text()


def _inpaint_once(app: AppProcess) -> None:
    """One ``/inpaint`` call through gradio_client."""
    from gradio_client import Client, handle_file

    folder = app.log.parent
    Image.fromarray(textured(48, 48)).save(folder / "p.png")
    Image.fromarray(box_hole(48, 48, 8, 20, 8, 20).astype(np.uint8) * 255).save(folder / "m.png")
    Client(app.url, verbose=False).predict(handle_file(str(folder / "p.png")), handle_file(str(folder / "m.png")),
                                           ["telea"], api_name="/inpaint")


async def _list_tools(url: str, sse: bool) -> list:
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    async with (sse_client(url) if sse else streamable_http_client(url)) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            return (await session.list_tools()).tools


async def _call_tool(url: str, name: str, arguments: dict):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            return await session.call_tool(name, arguments)
