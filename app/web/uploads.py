"""The gate in front of Gradio's upload route: every upload is admitted against the disk's bounds first.

Gradio writes an upload into its folder (``POST /gradio_api/upload``) before any event handler
sees it, so the bounds of :mod:`app.disk` are enforced here, before a byte is written: the stated
size (Content-Length) against the per-file limit, the client's uploads in use against their
total, and the folder, swept first, against its cap. A refusal is a plain-text message with
413 (too large), 411 (no size stated), 429 (this client has too much in use) or 503 (the folder is
full of files in use); Gradio's page shows it as ``HTTP 429: <message>``. An upload admitted is
held for its client (:data:`app.disk.holds`) until its event has had time to read it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import disk

UPLOAD_PATH = "/gradio_api/upload"
PROXY_HOPS_ENV = "INPAINT_PROXY_HOPS"


def proxy_hops() -> int:
    """Proxies in front of the app that append the address they saw to ``X-Forwarded-For``.

    ``INPAINT_PROXY_HOPS``; by default 1 on a Hugging Face Space (its proxy connects from an
    internal address shared by every visitor) and 0 elsewhere (uvicorn already takes the address a
    proxy on the same machine forwards, and a client's own header is not to be believed).
    """
    default = "1" if os.environ.get("SPACE_ID") else "0"
    return max(0, int(os.environ.get(PROXY_HOPS_ENV, default)))


def client_of(scope: Scope) -> str:
    """Who is uploading, for the per-client total: an IP address, or the /64 network of an IPv6 one.

    Behind ``hops`` proxies, the address the outermost of them saw: the ``hops``-th entry of
    ``X-Forwarded-For`` from the right (entries further left are the client's own word). One
    IPv6 client usually owns a whole /64, so it counts as one.
    """
    host = (scope.get("client") or ("unknown",))[0]
    hops = proxy_hops()
    if hops:
        forwarded = [part.strip() for name, value in scope.get("headers", []) if name == b"x-forwarded-for"
                     for part in value.decode("latin-1").split(",") if part.strip()]
        host = forwarded[-hops] if len(forwarded) >= hops else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return str(ipaddress.ip_network(f"{address}/64", strict=False)) if address.version == 6 else str(address)


class UploadGate:
    """ASGI middleware: admits each upload against :mod:`app.disk`'s bounds, then holds what it stored.

    Given to ``launch`` through ``app_kwargs`` (like :class:`app.web.serving.ClosedRoutes`), so it is in
    place from the first request. The admission (a sweep of the folder) runs in a worker thread.
    """

    def __init__(self, app: ASGIApp, keep: set[str] | None = None) -> None:
        self.app, self.keep = app, keep if keep is not None else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        path = path[len(root):] if root and path.startswith(root) else path
        if scope["type"] != "http" or scope.get("method") != "POST" or path.rstrip("/") != UPLOAD_PATH:
            await self.app(scope, receive, send)
            return
        size = _stated_size(scope)
        if size is None:
            await PlainTextResponse("Uploads must state their size (a Content-Length header).",
                                    status_code=411)(scope, receive, send)
            return
        client = client_of(scope)
        folder = Path(gr.utils.get_upload_folder())
        try:
            received = await run_in_threadpool(disk.admit, folder, client, size, self.keep)
        except disk.UploadRefused as refused:
            if refused.status != 413:  # read (and drop) what was sent: a client still sending misses an early answer
                await _drain(receive)
            headers = {"Retry-After": str(int(disk.claim_seconds()) if refused.status == 429 else 60)}
            await PlainTextResponse(str(refused), status_code=refused.status, headers=headers)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, _holding_what_is_stored(send, client))
        finally:
            received()


async def _drain(receive: Receive) -> None:
    """Receive the request's body and keep none of it (it is at most the per-file limit: checked first)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def release_after_events(demo: gr.Blocks) -> None:
    """Once an event has run, the uploads it was given no longer wait for it: their upload holds end.

    What a session goes on using (its photo) it holds itself (:func:`app.web.handlers.in_use`). Without this
    every upload would count against its client for the whole claim window, and an API client
    making many calls would be refused after 256 MB. Wraps ``demo.process_api``, through which
    Gradio runs every event (queued, direct and MCP calls alike).
    """
    process = demo.process_api

    @functools.wraps(process)
    async def process_api(*args: Any, **kwargs: Any) -> Any:
        try:
            return await process(*args, **kwargs)
        finally:
            disk.holds.release_uploads(paths_in(kwargs["inputs"] if "inputs" in kwargs else args[1:2]))

    demo.process_api = process_api  # type: ignore[method-assign]


def paths_in(value: Any) -> list[str]:
    """Every file path named in an event's payload (Gradio's ``FileData``: a dict with a ``path``), at any depth."""
    if isinstance(value, dict):
        own = [value["path"]] if isinstance(value.get("path"), str) else []
        return own + [path for item in value.values() for path in paths_in(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in paths_in(item)]
    return []


def _stated_size(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it states none (or nonsense)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _holding_what_is_stored(send: Send, client: str) -> Send:
    """``send`` that, for a successful upload, holds the stored files for ``client`` before the answer leaves.

    Gradio answers with the JSON list of the stored paths; they are held before the client can
    name them in an event, so no sweep deletes them in between.
    """
    state: dict = {"ok": False, "body": b""}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            state["ok"] = message["status"] == 200
        elif message["type"] == "http.response.body" and state["ok"]:
            state["body"] += message.get("body", b"")
            if not message.get("more_body", False):
                _hold(state["body"], client)
        await send(message)

    return wrapped


def _hold(body: bytes, client: str) -> None:
    try:
        paths = [path for path in json.loads(body) if isinstance(path, str)]
    except (ValueError, TypeError):
        return
    disk.holds.hold(f"upload:{client}", paths, disk.claim_seconds(), uploader=client)
