"""Serving the studio to the public: queue bounds, theme, the MCP tool, and the back office closed.

:func:`launch` is what ``app.py`` and the tests start; everything a visitor should not reach is
answered 404 from the first request on (:class:`ClosedRoutes`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app import disk, workers
from app.web import results
from app.web.event_guard import guard_events
from app.web.keys import KEYS_JS
from app.web.page import CSS, IMPORTED, build
from app.web.uploads import UploadGate, release_after_events

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """Default look with system fonts: nothing is fetched from a font CDN."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def mcp_enabled() -> bool:
    """Whether ``/inpaint`` is also served as an MCP tool: yes unless ``INPAINT_MCP`` says 0/false/no/off."""
    return os.environ.get("INPAINT_MCP", "1").strip().lower() not in ("0", "false", "no", "off")


#: Operator routes Gradio answers for anyone: traffic statistics (the summary is open whenever monitoring
#: is, and the dashboard mounts on first use), the endless change stream of ``gradio app.py`` reloading,
#: and the screen-recording converter (runs ffmpeg on any uploaded video; the page never records).
BACK_OFFICE = ("/monitoring", "/gradio_api/dev/reload", "/gradio_api/process_recording")


def closed_routes(demo: gr.Blocks) -> tuple[str, ...]:
    """The :data:`BACK_OFFICE` paths to close; the reload stream stays for ``gradio app.py`` (its page uses it)."""
    return tuple(path for path in BACK_OFFICE if not (demo.dev_mode and path.endswith("/dev/reload")))


class ClosedRoutes:
    """ASGI middleware: a plain 404 for ``paths`` and everything under them, before any route runs.

    Passed to ``launch`` through ``app_kwargs`` so it is in place from the first request (routes
    removed after ``launch`` would be open until then), and it needs nothing from Gradio's routes.
    """

    def __init__(self, app: ASGIApp, paths: tuple[str, ...]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        path = path[len(root):] if root and path.startswith(root) else path
        if scope["type"] == "http" and any(path == p or path.startswith(p + "/") for p in self.paths):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def public_settings(demo: gr.Blocks, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``launch`` keyword arguments for the public: the MCP tool on, the back office closed, uploads gated.

    Monitoring and run history are off through Gradio's own settings (the run-history page would
    list results the sweep has deleted, and its bucket routes call the Hub for visitors);
    :class:`ClosedRoutes` answers 404 for the rest. :class:`app.web.uploads.UploadGate` admits every
    upload against the disk's bounds before Gradio writes it. Callers' own values win, except these two.
    """
    kwargs = {"mcp_server": mcp_enabled(), "enable_monitoring": False, "run_history": False} | kwargs
    app_kwargs = dict(kwargs.get("app_kwargs") or {})
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(ClosedRoutes, paths=closed_routes(demo)),
                                Middleware(UploadGate, keep=results.page_files)]
    return kwargs | {"app_kwargs": app_kwargs}


def launch(demo: gr.Blocks | None = None, **kwargs) -> None:
    """Queue with bounded concurrency and size, then serve (offline-safe; see :func:`public_settings`)."""
    demo = demo or build()
    release_after_events(demo)
    guard_events(demo)  # too few values, malformed event data: a message, not a bare "Error"
    root = Path(gr.utils.get_upload_folder())
    results.page_files.update(disk.made_since(root, IMPORTED - 1))  # made while the page was built
    disk.sweep(root, keep=results.page_files)  # what an earlier run of the server left
    demo.queue(default_concurrency_limit=workers.INFERENCE_SLOTS,
               max_size=int(os.environ.get("INPAINT_QUEUE_SIZE", "32")))
    kwargs.setdefault("server_name", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    kwargs.setdefault("server_port", int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    demo.launch(theme=theme(), css=CSS, js=KEYS_JS, max_file_size=f"{disk.MAX_UPLOAD_MB}mb",
                **public_settings(demo, kwargs))
