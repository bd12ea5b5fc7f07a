"""Model lifecycle: loaded once under concurrency, LRU bound, device choice, out-of-memory."""

from __future__ import annotations

import gc
import json
import os
import threading
import weakref

import numpy as np
import pytest
import torch

from app import model_cache, registry
from app.errors import ModelUnavailableError, OutOfMemoryError
from app.models.base import Batch, NetworkFacts, NeuralNetwork
from app.registry import get
from app.specs import ModelSpec
from app.weights.resolve import approx_size
from tests.instrumented import WEIGHT, TinyNet, tiny_spec


def batch() -> Batch:
    return Batch(images=np.zeros((1, 8, 8, 3), np.uint8), holes=np.ones((1, 8, 8), bool))


def in_threads(fn, count: int) -> list:
    results: list = []
    barrier = threading.Barrier(count)

    def work() -> None:
        barrier.wait()
        results.append(fn())

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


# ------------------------------------------------------------------------- load once


def test_concurrent_first_use_loads_once(local):
    spec = local("a", slow=0.3)
    models = in_threads(lambda: model_cache.get_inpainter(spec), 8)
    assert len(models) == 8 and all(m is models[0] for m in models)
    assert TinyNet.builds == 1
    assert torch.all(models[0].conv.weight == WEIGHT)


def test_other_models_load_in_parallel(local):
    TinyNet.events = {name: threading.Event() for name in ("first_started", "second_started")}
    first, second = local("first", role="first"), local("second", role="second")
    threads = [threading.Thread(target=model_cache.get_inpainter, args=(spec,)) for spec in (first, second)]
    threads[0].start()
    TinyNet.events["first_started"].wait(10)
    threads[1].start()
    for thread in threads:
        thread.join(30)
    assert TinyNet.events["first_released"] is True  # the second load ran while the first was loading
    assert set(model_cache.loaded_ids()) == {"first", "second"}


def test_loaded_model_is_eval_frozen_and_on_the_chosen_device(local, monkeypatch):
    monkeypatch.setenv("INPAINT_DEVICE", "cpu")
    model = model_cache.get_inpainter(local("a"))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.conv.weight.device.type == "cpu"


@pytest.mark.parametrize("value", ["cuda:7", "gpu0"])
def test_bad_device_is_a_clear_error(monkeypatch, value):
    if value == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    monkeypatch.setenv("INPAINT_DEVICE", value)
    with pytest.raises(ModelUnavailableError, match="INPAINT_DEVICE"):
        model_cache.select_device()


def test_default_device_is_cuda_when_available(monkeypatch):
    monkeypatch.delenv("INPAINT_DEVICE", raising=False)
    assert model_cache.select_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


# ------------------------------------------------------------------------------- LRU


@pytest.mark.slow  # over 1 s here: the full run only (README, fast lane)
def test_lru_bound_evicts_least_recently_used(local, monkeypatch):
    monkeypatch.setenv("INPAINT_MAX_LOADED_MODELS", "2")
    a, b, c = local("a"), local("b"), local("c")
    first_a = model_cache.get_inpainter(a)
    model_cache.get_inpainter(b)
    assert model_cache.get_inpainter(a) is first_a  # a is now the most recently used
    gone = weakref.ref(model_cache.get_inpainter(b))
    model_cache.get_inpainter(a)
    model_cache.get_inpainter(c)  # evicts b
    assert model_cache.loaded_ids() == ["a", "c"]
    gc.collect()
    assert gone() is None  # really released, not just forgotten
    assert TinyNet.builds == 3
    model_cache.get_inpainter(b)
    assert model_cache.loaded_ids() == ["c", "b"] and TinyNet.builds == 4


def test_a_failed_load_evicts_nothing(local, monkeypatch):
    monkeypatch.setenv("INPAINT_MAX_LOADED_MODELS", "1")
    model_cache.get_inpainter(local("a"))
    with pytest.raises(ModelUnavailableError):
        model_cache.get_inpainter(tiny_spec("no-weights"))
    assert model_cache.loaded_ids() == ["a"]


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("1", 1), ("5", 5), ("0", 1), ("lots", None)])
def test_optional_count_cap_from_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("INPAINT_MAX_LOADED_MODELS", raising=False)
    else:
        monkeypatch.setenv("INPAINT_MAX_LOADED_MODELS", value)
    assert model_cache.max_loaded() == expected


def test_models_stay_loaded_while_their_weights_fit_the_memory_budget(local, monkeypatch):
    """Not a fixed count: as many as fit (each tiny model holds 48 bytes of weights)."""
    monkeypatch.setenv(model_cache.MEMORY_ENV, str(100 / 2**20))  # 100 bytes: room for two
    a, b, c = local("a"), local("b"), local("c")
    model_cache.get_inpainter(a)
    model_cache.get_inpainter(b)
    assert model_cache.loaded_ids() == ["a", "b"]
    model_cache.get_inpainter(a)  # used again: b is now the least recently used
    model_cache.get_inpainter(c)
    assert model_cache.loaded_ids() == ["a", "c"]
    monkeypatch.setenv(model_cache.MEMORY_ENV, str(1000 / 2**20))
    model_cache.get_inpainter(b)
    assert model_cache.loaded_ids() == ["a", "c", "b"]  # a larger budget keeps all three
    monkeypatch.setenv(model_cache.MEMORY_ENV, "0")
    model_cache.get_inpainter(local("d"))
    assert model_cache.loaded_ids() == ["d"]  # over any budget, the model in use is still served


def test_default_budget_is_a_share_of_the_devices_memory(monkeypatch):
    monkeypatch.delenv(model_cache.MEMORY_ENV, raising=False)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert model_cache.memory_budget(torch.device("cpu")) == int(model_cache.CPU_SHARE * ram)
    assert model_cache.weights_bytes({"w": torch.zeros(10, 10), "h": torch.zeros(4, dtype=torch.float16)}) == 408


def test_classical_models_are_kept_outside_the_bound(local, monkeypatch):
    monkeypatch.setenv("INPAINT_MAX_LOADED_MODELS", "1")
    telea = get("telea")
    try:
        first = model_cache.get_inpainter(telea)
    except ImportError as exc:
        pytest.skip(f"classical inpainter not importable here: {exc}")
    model_cache.get_inpainter(local("a"))
    assert model_cache.get_inpainter(telea) is first and model_cache.loaded_ids() == ["a"]


# ------------------------------------------------------------------- out of memory


def test_out_of_memory_becomes_a_clear_error_and_does_not_poison(local):
    spec = local("a")
    model = model_cache.get_inpainter(spec)
    TinyNet.oom_next = True
    with pytest.raises(OutOfMemoryError) as error:
        model_cache.run_guarded(spec, model.inpaint, batch(), samples=1)
    assert "Tiny a ran out of GPU memory" in str(error.value) and "smaller selection" in str(error.value)
    assert error.value.__context__ is None and error.value.__cause__ is None
    assert TinyNet.last_activation() is None  # the failed call's tensors were released
    assert model_cache.get_inpainter(spec) is model  # still loaded, and the next call works
    result = model_cache.run_guarded(spec, model.inpaint, batch(), samples=1)
    assert result.samples.shape == (1, 1, 8, 8, 3)
    assert TinyNet.inference_mode_seen == [True, True]


def test_other_errors_pass_through(local):
    spec = local("a")

    def broken() -> None:
        raise RuntimeError("shape mismatch in layer 3")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        model_cache.run_guarded(spec, broken)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_cuda_out_of_memory_is_freed(local):
    spec = local("a")
    free, _ = torch.cuda.mem_get_info()

    def too_big() -> None:
        keep = torch.empty(free // 2, dtype=torch.uint8, device="cuda")  # noqa: F841 - held by the frame
        torch.empty(free, dtype=torch.uint8, device="cuda")

    before = torch.cuda.memory_allocated()
    with pytest.raises(OutOfMemoryError):
        model_cache.run_guarded(spec, too_big)
    assert torch.cuda.memory_allocated() == before
    assert torch.cuda.memory_reserved() < free // 4  # the cache was emptied
    model_cache.run_guarded(spec, lambda: torch.ones(1, device="cuda").sum().item())


# ---------------------------------------------------------------------- availability


def test_availability_classical_local_missing(local, checkpoints, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_cache.availability(get("telea")).ok
    ready = model_cache.availability(local("a"))
    assert ready.ok and str(checkpoints / "a") in ready.reason
    missing = model_cache.availability(tiny_spec("nothing"))
    assert not missing.ok and str(checkpoints / "nothing") in missing.reason
    assert "no Hub mirror" in missing.reason
    broken = model_cache.availability(ModelSpec(id="x", name="X", kind="neural", entry="app.models.nope:Net",
                                                licence="MIT"))
    assert not broken.ok and "not part of this installation" in broken.reason
    with pytest.raises(ModelUnavailableError, match="no Hub mirror"):
        model_cache.get_inpainter(tiny_spec("nothing"))


# ------------------------------------------------------------- the networks' declared facts


@pytest.mark.parametrize("spec", [s for s in registry.NEURAL], ids=lambda s: s.id)
def test_every_network_declares_its_facts_and_the_registry_reads_them(spec):
    cls = spec.entry_class()
    assert isinstance(cls, type) and issubclass(cls, NeuralNetwork) and spec.network() is cls
    facts = cls.FACTS
    assert isinstance(facts, NetworkFacts)
    assert (spec.native_size, spec.max_size, spec.size_multiple) == (facts.native_size, facts.max_size,
                                                                     facts.size_multiple)
    assert facts.official_files and cls.OFFICIAL_FILES == facts.official_files
    assert facts.approx_mb and f"~{facts.approx_mb} MB" == approx_size(spec)
    assert callable(cls.for_state) and callable(cls.inpaint) and callable(cls.deploy)


def test_a_network_without_facts_is_refused_when_defined():
    with pytest.raises(TypeError, match="FACTS"):
        type("Factless", (NeuralNetwork,), {})


def test_a_neural_spec_whose_class_is_not_a_network_cannot_load(checkpoints):
    spec = ModelSpec(id="plain", name="Plain", kind="neural", entry="app.inpainters.opencv:OpenCVInpainter",
                     licence="MIT")
    assert not model_cache.availability(spec).ok
    with pytest.raises(ModelUnavailableError, match="not a NeuralNetwork"):
        model_cache.get_inpainter(spec)


def test_licence_is_an_identifier_plus_the_text_users_see():
    shown = {spec.id: str(spec.licence) for spec in registry.MODELS}
    assert shown["lama"] == "Apache-2.0" and shown["telea"] == "Apache-2.0 (OpenCV)"
    assert shown["edgeconnect-places2"] == "CC BY-NC 4.0 (non-commercial)"
    assert shown["rfr-psv"] == "MIT code; weights licence not stated by the authors"
    assert shown["glcic-places2"] == "Apache-2.0 code; the weights carry no licence statement"  # mmagic releases
    assert {spec.licence.id for spec in registry.MODELS} == {"apache-2.0", "mit", "cc-by-nc-4.0", "other",
                                                             registry.WEIGHTS_LICENCE_NOT_STATED}
    assert json.dumps(get("lama").licence) == '"Apache-2.0"' and get("lama").licence.text == "Apache-2.0"
    assert ModelSpec(id="x", name="X", kind="classical", entry="m:C", licence="Custom").licence.id == "other"
