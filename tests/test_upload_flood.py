"""Disk holds its cap under an upload flood and never takes a file in use (issue 24, item 4).

The fast tests drive :mod:`app.disk`'s admission and :class:`app.uploads.UploadGate` in front of a
stand-in for Gradio's upload route (it writes like Gradio: a temporary file in the folder, renamed
into a folder of its own); the slow one floods the real app over HTTP.
"""

from __future__ import annotations

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

from app import disk, results, ui, uploads
from tests.helpers import textured

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


def test_a_page_sessions_photo_is_in_use_until_the_page_closes(folder, tmp_path):
    photo = folder / "abc" / "photo.png"
    photo.parent.mkdir()
    Image.fromarray(textured(60, 80)).save(photo)
    request = gr.Request(session_hash="visitor")
    ui.on_upload(str(photo), request=request)
    assert disk.sweep(folder, cap=0) > 0 and photo.exists()
    ui.on_unload(request)
    disk.sweep(folder, cap=0)
    assert not photo.exists()


def test_a_refused_photo_is_not_kept_in_use(folder):
    bad = folder / "abc" / "photo.png"
    bad.parent.mkdir()
    bad.write_bytes(b"not an image")
    ui.on_upload(str(bad), request=gr.Request(session_hash="visitor"))
    disk.sweep(folder, cap=0)
    assert not bad.exists()


def _painted(size: tuple[int, int]) -> dict:
    layer = np.zeros((size[1], size[0], 4), np.uint8)
    layer[10:30, 10:40] = (*ui._rgba(ui.HOLE_COLOUR)[:3], 255)
    return {"background": None, "layers": [layer], "composite": None}


def test_an_expired_photo_is_said_plainly_without_server_paths(folder):
    photo = folder / "abc" / "photo.png"
    photo.parent.mkdir()
    Image.fromarray(textured(60, 80)).save(photo)
    photo.unlink()
    with pytest.raises(gr.Error) as erase:
        ui.on_run(str(photo), None, _painted((80, 60)), ["telea"], 1, 0, "crop", 32, 0, 0)
    editor = ui.guard_editor(gr.ImageEditor(type="numpy"))
    with pytest.raises(gr.Error) as layer:
        editor.convert_and_format_image(gr.FileData(path=str(photo)))
    with pytest.raises(gr.Error) as undo:
        ui.on_undo(None, [str(photo)])
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
