"""Where each model's weights come from, said once (app/weights/sources.py) for the page, `weights list` and README.

Issue 25: the page said "the authors' weights", the CLI a repo id and the README its own prose; sizes
must come from what is recorded, never guessed.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app import model_cache, registry
from app import weights_cli as cli
from app.weights import sources
from app.weights.sources import Source, describe_source, official_source, readme_table
from tests.synthetic import checkpoints_with


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, no files, no mirror, no pins: what a fresh server without a connection knows."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("INPAINT_PINS", str(tmp_path / "pins.json"))
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    return tmp_path


def test_sizes_are_recorded_or_said_to_be_unknown():
    assert Source("hub", "x", 381_428_720).size == "381 MB"
    assert Source("drive", "x", 86_000_000, approx=True).size == "~86 MB"
    assert Source("server", "x").size == "size unknown"
    assert Source("hub", "x", 2_500).size == "2 kB" and Source("hub", "x", 1_500_000_000).size == "1.5 GB"
    assert sources.download_phrase(Source("server", "the authors' server")) == \
        "downloads from the authors' server on first use (size unknown)"


def test_each_registered_source_is_named_the_same_way(offline):
    lama, deepfill = registry.get("lama"), registry.get("deepfillv2-places2")
    assert describe_source(registry.get("telea")) == Source("built-in", "built in (no weights)")
    assert describe_source(lama) == Source("hub", "the Hugging Face Hub", 381_428_720)  # registry's archive size
    assert describe_source(deepfill) == Source("server", "the authors' server")  # no size recorded: none shown
    drive = SimpleNamespace(id="x", official_archive=None, official_download=None,
                            official_drive=SimpleNamespace(size=None))
    assert official_source(drive) == Source("drive", "the authors' Google Drive")
    drive.official_drive.size = 86_000_000  # the registry's figure is approximate (display only)
    assert official_source(drive).size == "~86 MB"


def test_a_mirror_comes_first_and_weights_on_disk_are_the_disk(offline, monkeypatch):
    monkeypatch.setenv(registry.HUB_NAMESPACE_ENV, "someone")
    source = describe_source(registry.get("edgeconnect-places2"))
    assert source.kind == "mirror" and source.label == "this server's mirror on the Hugging Face Hub"
    assert source.size.startswith("~")  # the network's declared safetensors size until a first use pins it
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(checkpoints_with(offline / "ckpt", "pic-places2")))
    on_disk = describe_source(registry.get("pic-places2"))
    files = list((offline / "ckpt" / "pic-places2").iterdir())
    assert on_disk.kind == "disk" and on_disk.size_bytes == sum(f.stat().st_size for f in files if f.suffix != ".md")


def test_weights_list_prints_each_models_source_offline(offline, capsys):
    assert cli.main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == set(registry.ids()) | {spec.id for spec in registry.TEXT_FINDERS}
    for spec in registry.MODELS + registry.TEXT_FINDERS:
        assert describe_source(spec).label in lines[spec.id], lines[spec.id]
    assert "the Hugging Face Hub" in lines["lama"] and "381 MB" in lines["lama"]
    assert "the authors' server" in lines["glcic-places2"] and "size unknown" in lines["glcic-places2"]


def test_the_page_offers_three_states(offline, monkeypatch):
    assert model_cache.offer(registry.get("telea")).state == "ready"
    unavailable = model_cache.offer(registry.get("lama"))
    assert unavailable.state == "unavailable" and "offline" in unavailable.public
    assert unavailable.source.label == "the Hugging Face Hub"  # where it would come from, offline too


def test_the_readme_table_is_the_generated_one():
    """README.md's model table is scripts/model_table.py's output: regenerate it with `--write`."""
    from scripts.model_table import README, in_readme

    assert in_readme(README.read_text(encoding="utf-8")) == readme_table(), \
        "README.md's model table is stale: run `python scripts/model_table.py --write`"


def test_the_readme_table_says_what_a_first_visit_does():
    rows = {line.split("|")[2].strip(" `"): line for line in readme_table().splitlines()[2:]}
    assert set(rows) == set(registry.ids()) | {spec.id for spec in registry.TEXT_FINDERS}
    assert rows["telea"].rstrip(" |").endswith("ready")
    assert "downloads ~65 MB from the authors' Google Drive" in rows["textseg-xception"]
    assert "downloads 381 MB from the Hugging Face Hub" in rows["lama"]
    assert "downloads from the authors' server (size unknown)" in rows["pconv-places2"]
    for spec in registry.NEURAL + registry.TEXT_FINDERS:
        source = sources.registry_source(spec)
        assert source.label in rows[spec.id] and (source.kind != "none" or "`weights push`" in rows[spec.id])
