"""Downloads never hold the inference slot: a caller whose weights crawl in leaves the others served (issue 24).

The app runs as a Space does (``python app.py``), online against the loopback Hub of
:mod:`tests.hub_server` dripping LaMa's mirror; ``/inpaint`` is called through gradio_client, the
way the MCP tool reaches it too (Gradio's MCP server submits the same queued event).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from app import workers
from app.errors import Cancelled
from tests.hub_server import HubServer
from tests.hub_weights import FILE
from tests.server import running_app
from tests.upload_cases import call, mask_file, small_photo

DRIP = (64, 0.1)  # 640 bytes/s: the download takes far longer than the test
SLACK = 30.0  # "served promptly" on a slow, loaded CI machine: Telea on a small photo takes well under 1 s


def test_a_caller_waiting_for_the_slot_stops_when_its_client_leaves():
    with workers.inference_slot():
        left = threading.Event()
        outcome: list[BaseException | None] = []

        def wait() -> None:
            try:
                with workers.inference_slot(left.is_set):
                    outcome.append(None)
            except Cancelled as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(3 * workers.POLL_SECONDS)
        assert not outcome, "the slot is held: the second caller waits"
        left.set()
        waiter.join(5)
    assert isinstance(outcome[0], Cancelled) and "nothing was computed" in str(outcome[0])
    with workers.inference_slot():  # released by the holder, never taken by the one that gave up
        pass


@pytest.mark.slow  # starts the app and a Hub
def test_a_crawling_download_does_not_hold_another_callers_telea(tmp_path: Path):
    from gradio_client import Client

    with HubServer() as hub:
        hub.add("clins/big-lama", {FILE: save({"w": torch.zeros(1 << 18)})}, refs=("v1",))  # 1 MB: 27 min
        hub.drip[("clins/big-lama", FILE)] = DRIP
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
               "INPAINT_HUB_NAMESPACE": "clins", "INPAINT_DOWNLOAD_TIMEOUT": "120"}
        with running_app(tmp_path / "app", **env) as app:
            photo = small_photo()
            mask = _mask_for(photo, tmp_path)
            slow = Client(app.url, verbose=False).submit(*_args(photo, mask, ["lama"]), api_name="/inpaint")
            deadline = time.monotonic() + SLACK
            while f"/clins/big-lama/resolve/v1/{FILE}" not in hub.paths("GET"):
                assert time.monotonic() < deadline, f"LaMa's download never started:\n{app.log_text()[-2000:]}"
                time.sleep(0.1)

            start = time.monotonic()
            files, info = call(Client(app.url, verbose=False), photo, mask)
            seconds = time.monotonic() - start
            print(f"\nTelea served in {seconds:.2f} s while LaMa's weights dripped in")
            assert [row["model"] for row in info] == ["telea"] and len(files) == 1
            assert seconds < SLACK
            assert not slow.done(), f"the first caller was still downloading meanwhile:\n{app.log_text()[-2000:]}"
            slow.cancel()
            hub.drip.clear()  # the network is back: the transfer ends and the app stops promptly


def _mask_for(photo: Path, folder: Path) -> Path:
    from PIL import Image

    return mask_file(folder, Image.open(photo).size, "box")


def _args(photo: Path, mask: Path, models: list[str]) -> tuple:
    from gradio_client import handle_file

    return handle_file(str(photo)), handle_file(str(mask)), models, 1, 0, "crop", 128, 8, 8, None
