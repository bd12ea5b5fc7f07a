"""Disk holds its cap under an upload flood and never takes a file in use (issue 24, item 4).

The fast tests drive :mod:`app.disk`'s admission and :class:`app.web.uploads.UploadGate` in front of a
stand-in for Gradio's upload route (it writes like Gradio: a temporary file in the folder, renamed
into a folder of its own); the slow one floods the real app over HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app import disk
from app.web import canvas, handlers, results, uploads
from tests.helpers import run_async, textured

MB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_holds(monkeypatch):
    """No holds or uploads in flight from other tests."""
    monkeypatch.setattr(disk, "holds", disk.Holds())
    monkeypatch.setattr(disk, "_in_flight", {})


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "gradio"
    root.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root))
    monkeypatch.setenv(disk.CAP_ENV, "10")
    monkeypatch.setenv(disk.CLIENT_ENV, "4")
    return root


def _stored(root: Path, name: str, size: int, client: str, age: float = 0) -> Path:
    """An upload as the gate leaves it: stored, and held for its client until its event claims it."""
    path = root / hashlib.sha256(name.encode()).hexdigest()[:16] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"u" * size)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    disk.holds.hold(f"upload:{client}", [path], disk.claim_seconds(), uploader=client)
    return path


def _total(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_the_cap_never_deletes_a_file_in_use_and_the_age_limit_does(tmp_path):
    photo = tmp_path / "s" / "photo.png"
    photo.parent.mkdir()
    photo.write_bytes(b"p" * 1000)
    run = tmp_path / "inpaint-run"
    run.mkdir()
    (run / "r.png").write_bytes(b"r" * 1000)
    disk.holds.hold("session:a", [photo])
    disk.holds.hold("run:x", [run])  # a folder held holds its files
    assert disk.sweep(tmp_path, cap=0) == 2000 and photo.exists() and (run / "r.png").exists()
    stamp = time.time() - 7200
    os.utime(photo, (stamp, stamp))
    disk.sweep(tmp_path, age=3600, cap=0)
    assert not photo.exists(), "the age limit holds for files in use too"
    disk.holds.release("run:x")
    disk.sweep(tmp_path, cap=0)
    assert not run.exists()


def test_an_upload_over_the_cap_is_refused_and_no_file_in_use_is_deleted(folder):
    photos = [_stored(folder, f"p{i}.png", 3 * MB, f"10.0.0.{i}", age=600) for i in range(3)]
    for path in photos:
        disk.holds.hold("session:s", [path])  # claimed by pages: in use
    stale = folder / "old" / "x.bin"
    stale.parent.mkdir()
    stale.write_bytes(b"x" * MB)
    received = disk.admit(folder, "10.0.0.9", MB)  # 9 + 1 MB fits once the stale file goes
    received()
    assert not stale.exists()
    with pytest.raises(disk.UploadRefused) as refused:
        disk.admit(folder, "10.0.0.9", 2 * MB)
    assert refused.value.status == 503 and "try again" in str(refused.value)
    assert all(p.exists() for p in photos) and _total(folder) <= 10 * MB


def test_one_clients_uploads_in_use_and_in_flight_are_bounded_in_total(folder):
    _stored(folder, "a.png", 2 * MB, "10.0.0.1")
    received = disk.admit(folder, "10.0.0.1", MB)  # in flight: counts until it is over
    with pytest.raises(disk.UploadRefused) as refused:
        disk.admit(folder, "10.0.0.1", 1.5 * MB)
    assert refused.value.status == 429 and "at most 4 MB" in str(refused.value)
    disk.admit(folder, "10.0.0.2", 2 * MB)()  # another client is not affected
    received()
    disk.admit(folder, "10.0.0.1", 1.5 * MB)()


def test_a_flood_from_many_addresses_gives_way_to_a_small_visitor_never_the_reverse(folder, monkeypatch):
    monkeypatch.setenv(disk.CLIENT_ENV, "100")
    flood = [_stored(folder, f"f{i}.bin", 3 * MB, f"10.1.0.{i}", age=60 - i) for i in range(3)]
    visitor = _stored(folder, "layer.png", MB // 2, "10.2.0.1")
    with pytest.raises(disk.UploadRefused):  # a flooder with as much waiting pushes nobody out
        disk.admit(folder, "10.1.0.9", 3 * MB)
    assert all(p.exists() for p in flood) and visitor.exists()
    disk.admit(folder, "10.2.0.1", MB)()  # the small visitor: the oldest flood upload makes room
    assert not flood[0].exists() and flood[1].exists() and visitor.exists()
    disk.holds.hold("session:v", [flood[1]])  # claimed by a page: never evicted
    assert not disk.holds.evict(disk.key(flood[1]))
    with pytest.raises(disk.UploadRefused):
        disk.admit(folder, "10.3.0.1", 4 * MB)  # only flood[2] (3 MB) may go, and it is not bigger than 4 MB
    assert flood[1].exists() and flood[2].exists()


def test_a_run_is_refused_while_the_folder_is_full_of_files_in_use(folder, monkeypatch):
    from app.errors import InpaintError

    photo = _stored(folder, "photo.png", 2 * MB, "10.0.0.1")
    disk.holds.hold("session:s", [photo])
    monkeypatch.setenv(disk.CAP_ENV, "1")
    with pytest.raises(InpaintError, match="try again in a few minutes"):
        results.output_folder("s")
    assert photo.exists() and not list(folder.glob("inpaint-*"))
    monkeypatch.setenv(disk.CAP_ENV, "3")
    run = results.output_folder("s")
    assert disk.in_use(Path(disk.key(run)), disk.key(folder), disk.holds.held())


def test_a_page_sessions_photo_is_in_use_until_the_page_closes(folder, tmp_path):
    photo = folder / "abc" / "photo.png"
    photo.parent.mkdir()
    Image.fromarray(textured(60, 80)).save(photo)
    request = gr.Request(session_hash="visitor")
    handlers.on_upload(str(photo), request=request)
    assert disk.sweep(folder, cap=0) > 0 and photo.exists()
    handlers.on_unload(request)
    disk.sweep(folder, cap=0)
    assert not photo.exists()


def test_a_refused_photo_is_not_kept_in_use(folder):
    bad = folder / "abc" / "photo.png"
    bad.parent.mkdir()
    bad.write_bytes(b"not an image")
    handlers.on_upload(str(bad), request=gr.Request(session_hash="visitor"))
    disk.sweep(folder, cap=0)
    assert not bad.exists()


def _painted(size: tuple[int, int]) -> dict:
    layer = np.zeros((size[1], size[0], 4), np.uint8)
    layer[10:30, 10:40] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    return {"background": None, "layers": [layer], "composite": None}


def test_an_expired_photo_is_said_plainly_without_server_paths(folder):
    photo = folder / "abc" / "photo.png"
    photo.parent.mkdir()
    Image.fromarray(textured(60, 80)).save(photo)
    photo.unlink()
    with pytest.raises(gr.Error) as erase:
        handlers.on_run(str(photo), None, _painted((80, 60)), ["telea"], 1, 0, "crop", 32, 0, 0)
    editor = canvas.guard_editor(gr.ImageEditor(type="numpy"))
    with pytest.raises(gr.Error) as layer:
        editor.convert_and_format_image(gr.FileData(path=str(photo)))
    with pytest.raises(gr.Error) as undo:
        handlers.on_undo(None, [str(photo)])
    for error in (erase.value, layer.value, undo.value):
        assert "no longer on the server" in error.message and "upload it again" in error.message
        assert str(folder) not in error.message and "/" not in error.message and "layer" not in error.message


def test_the_client_is_the_address_the_proxies_saw(monkeypatch):
    scope = {"client": ("10.16.3.80", 1), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")]}
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv(uploads.PROXY_HOPS_ENV, raising=False)
    assert uploads.client_of(scope) == "10.16.3.80", "without a proxy a client's own header is not believed"
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    assert uploads.client_of(scope) == "203.0.113.7", "on a Space: what its proxy appended, not the client's word"
    monkeypatch.setenv(uploads.PROXY_HOPS_ENV, "2")
    assert uploads.client_of(scope) == "6.6.6.6"
    v6 = {"client": ("2001:db8:1:2:aaaa::1", 1), "headers": []}
    monkeypatch.setenv(uploads.PROXY_HOPS_ENV, "0")
    assert uploads.client_of(v6) == uploads.client_of({"client": ("2001:db8:1:2:bbbb::9", 1)}) == "2001:db8:1:2::/64"


def test_an_upload_stops_waiting_once_its_event_has_run_but_a_photo_in_use_stays_held(folder):
    """The gate holds an upload for the event it was sent for; once any event has run with it, only a
    session's own hold (the page's photo) keeps it: an API client's inputs stop counting against it."""
    seen = []
    with gr.Blocks() as demo:
        field, out = gr.File(type="filepath"), gr.Textbox()
        field.change(lambda path: seen.append(path) or "ok", field, out)
    uploads.release_after_events(demo)
    api_input = _stored(folder, "image.png", 1000, "10.0.0.1")
    photo = _stored(folder, "photo.png", 1000, "10.0.0.1")
    results.in_use_by("visitor", str(photo))
    for path in (api_input, photo):
        run_async(demo.process_api(0, [{"path": str(path), "meta": {"_type": "gradio.FileData"}}]))
    assert seen and "10.0.0.1" not in disk.holds.waiting()
    assert disk.holds.uploads_of("10.0.0.1") == 1000, "the photo in use still counts against its client"
    disk.sweep(folder, cap=0)
    assert not api_input.exists() and photo.exists()


async def _gradio_like_upload(request: Request) -> JSONResponse:
    """Gradio's upload route, as far as disk goes: a temporary file in the folder, renamed into its own folder."""
    root = Path(gr.utils.get_upload_folder())
    form = await request.form()
    paths = []
    for file in form.getlist("files"):
        with tempfile.NamedTemporaryFile(dir=root, delete=False) as temp:
            temp.write(await file.read())
        dest = root / hashlib.sha256(Path(temp.name).read_bytes()).hexdigest() / file.filename
        dest.parent.mkdir(exist_ok=True)
        os.rename(temp.name, dest)
        paths.append(str(dest))
    return JSONResponse(paths)


@pytest.fixture
def gate(folder) -> TestClient:
    app = Starlette(routes=[Route("/gradio_api/upload", _gradio_like_upload, methods=["POST"])])
    return TestClient(uploads.UploadGate(app))


def _send(gate: TestClient, name: str, size: int, client: str):
    return gate.post("/gradio_api/upload", files=[("files", (name, os.urandom(size)))],
                     headers={"x-forwarded-for": client})


def test_the_gate_holds_what_it_admits_and_refuses_with_the_visitors_message(gate, folder, monkeypatch):
    monkeypatch.setenv(uploads.PROXY_HOPS_ENV, "1")
    stored = [_send(gate, f"a{i}.bin", MB, "10.0.0.1") for i in range(4)]
    assert [r.status_code for r in stored] == [200, 200, 200, 429]  # 3 MB and a bit in use: the 4th passes 4 MB
    assert "at most 4 MB" in stored[3].text and str(folder) not in stored[3].text
    assert stored[3].headers["retry-after"] == "600"
    for response in stored[:3]:
        path = response.json()[0]
        assert disk.key(path) in disk.holds.waiting()["10.0.0.1"]
    flood = [_send(gate, f"b{i}.bin", 3 * MB, f"10.9.0.{i}") for i in range(4)]
    assert [r.status_code for r in flood] == [200, 200, 503, 503] and "try again" in flood[2].text
    assert _total(folder) <= 10 * MB
    too_big = gate.post("/gradio_api/upload", content=b"", headers={"content-length": str(300 * MB)})
    assert too_big.status_code == 413 and "at most 200 MB" in too_big.text
    assert not disk.uploading(), "a reservation outlived its upload"
    assert all(Path(r.json()[0]).exists() for r in stored[:3] + flood[:2])


def test_an_upload_without_a_stated_size_is_refused(gate):
    def chunks():
        yield b"--x\r\n"

    response = gate.post("/gradio_api/upload", content=chunks(),
                         headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 411 and "Content-Length" in response.text


def test_other_routes_pass_untouched(folder):
    seen = []

    async def other(request: Request) -> JSONResponse:
        seen.append(await request.body())
        return JSONResponse(json.loads(seen[-1]))

    app = Starlette(routes=[Route("/gradio_api/queue/join", other, methods=["POST"])])
    client = TestClient(uploads.UploadGate(app))
    assert client.post("/gradio_api/queue/join", json={"a": 1}).json() == {"a": 1}
    assert results.page_files is not None  # the gate keeps the page's own files (see serving.public_settings)


# --- The real app, flooded over HTTP -------------------------------------------------------------

FLOOD, FLOOD_MB, CAP_MB = 40, 20, 300
VICTIM = "192.0.2.10"


def _page_event(config: dict, trigger: str | None, inputs_have: str, outputs_have: str) -> int:
    """The page's event (its fn_index) whose inputs and outputs include the given elements (fired by ``trigger``,
    unless it is chained after another)."""
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"] if c.get("props", {}).get("elem_id")}
    for dep in config["dependencies"]:
        if ids[inputs_have] in dep["inputs"] and ids[outputs_have] in dep["outputs"] and \
                (trigger is None or any(event == trigger for _, event in dep["targets"])):
            return dep["id"]
    raise AssertionError(f"no {trigger} event from {inputs_have} to {outputs_have}")


def _call(http, config: dict, fn: int, session: str, values: dict[str, object]) -> dict:
    """Fire page event ``fn`` for ``session`` (inputs by elem_id, others at their defaults; states from the
    session) and wait for its end; returns Gradio's ``process_completed`` message."""
    components = {c["id"]: c for c in config["components"]}
    dep = next(d for d in config["dependencies"] if d["id"] == fn)
    data = []
    for cid in dep["inputs"]:
        props = components[cid].get("props", {})
        data.append(values.get(props.get("elem_id"), props.get("value")))
    join = http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session,
                                                      "event_data": None, "trigger_id": None})
    assert join.status_code == 200, join.text
    with http.stream("GET", f"/gradio_api/queue/data?session_hash={session}", timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event never completed")


def _upload(http, path: Path, name: str, client: str):
    with path.open("rb") as file:
        return http.post("/gradio_api/upload", files=[("files", (name, file))], headers={"x-forwarded-for": client})


def _file_data(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def _flood(url: str, blob: Path, clients: list[str], folder: Path) -> tuple[list[int], int]:
    """``FLOOD`` uploads of ``blob`` under distinct names, four at a time; the answers and the largest the
    folder was seen at (sampled every 20 ms while they ran)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    largest, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            total = 0
            for path in folder.rglob("*"):
                with contextlib.suppress(OSError):
                    total += path.stat().st_size if path.is_file() else 0
            largest[0] = max(largest[0], total)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with httpx.Client(base_url=url, timeout=120) as http, ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda i: _upload(http, blob, f"flood-{clients[i % len(clients)]}-{i}.bin",
                                                    clients[i % len(clients)]).status_code, range(FLOOD)))
    finally:
        done.set()
        watcher.join()
    return codes, largest[0]


@pytest.mark.slow  # starts the app and sends 1.6 GB over loopback
def test_a_flood_of_40_uploads_of_20_mb_stays_under_a_300_mb_cap_and_the_victim_still_erases(tmp_path):
    import httpx

    from tests.server import running_app

    blob = tmp_path / "flood.bin"
    with blob.open("wb") as out:  # 20 MB on disk, never in memory: the names differ, so Gradio keeps 40 files
        for _ in range(FLOOD_MB):
            out.write(os.urandom(MB))
    photo, layer = tmp_path / "photo.png", tmp_path / "layer.png"
    Image.fromarray(textured(600, 800)).save(photo)
    strokes = np.zeros((600, 800, 4), np.uint8)
    strokes[200:260, 300:420] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    Image.fromarray(strokes).save(layer)
    with running_app(tmp_path / "app", INPAINT_DISK_CAP_MB=str(CAP_MB)) as app, \
            httpx.Client(base_url=app.url, timeout=120) as http:
        folder = tmp_path / "app" / "gradio-tmp"
        config = http.get("/config").json()
        # The victim uploads a photo and the page takes it, before the flood.
        stored = _upload(http, photo, "photo.png", VICTIM).json()[0]
        upload_fn = _page_event(config, "upload", "photo", "editor")
        taken = _call(http, config, upload_fn, "victim", {"photo": _file_data(stored)})
        assert taken["success"], taken
        # One address: bounded by the per-client total (256 MB), refused with a message after that.
        one, largest_one = _flood(app.url, blob, ["198.51.100.7"], folder)
        # Forty addresses: bounded by the cap; the first address's unclaimed uploads give way first.
        many, largest_many = _flood(app.url, blob, [f"203.0.113.{i}" for i in range(FLOOD)], folder)
        refusal = _upload(http, blob, "one-more.bin", "203.0.113.250")
        # The victim erases: the editor's layers are uploaded, then the run.
        background = _upload(http, photo, "background.png", VICTIM)
        painted = _upload(http, layer, "layer_0.png", VICTIM)
        run_fn = _page_event(config, None, "editor", "gallery")
        editor = {"background": _file_data(background.json()[0]), "layers": [_file_data(painted.json()[0])],
                  "composite": None, "id": None}
        erased = _call(http, config, run_fn, "victim", {"editor": editor, "models": ["telea"]})
        held_at_end = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        photo_kept = Path(stored).exists()  # (Gradio empties its folder when the app stops)
    print(f"\nflood from one address: {one.count(200)} stored, {one.count(429)} refused (429), "
          f"folder at most {largest_one / MB:.0f} MB")
    print(f"flood from {FLOOD} addresses: {many.count(200)} stored, {many.count(503)} refused (503), "
          f"folder at most {largest_many / MB:.0f} MB (cap {CAP_MB} MB); at the end {held_at_end / MB:.0f} MB")
    assert one.count(200) == 256 // FLOOD_MB and one.count(429) == FLOOD - 256 // FLOOD_MB, one
    assert many.count(200) > 0 and set(many) <= {200, 503}, many
    assert max(largest_one, largest_many) <= CAP_MB * MB
    assert refusal.status_code == 503 and "try again in a few minutes" in refusal.text
    assert background.status_code == painted.status_code == 200, (background.text, painted.text)
    assert photo_kept, "the victim's photo was deleted"
    assert erased["success"], erased
