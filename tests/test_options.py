"""One declaration per knob (app.options) reaches the studio, ``/inpaint``, the CLI and the library unchanged."""

from __future__ import annotations

import dataclasses
import math
import re

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import api, cli, options, pipeline, registry
from app.errors import InpaintError
from app.options import KNOBS, NAMES, Options
from app.web import canvas, endpoints, page
from tests.helpers import box_hole, textured

NUMERIC = [k for k in KNOBS if not k.choices]


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    return page.build()


@pytest.fixture
def files(tmp_path) -> tuple[str, str]:
    photo, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(textured(64, 64)).save(photo)
    Image.fromarray(box_hole(64, 64, 20, 30, 20, 30).astype(np.uint8) * 255).save(mask)
    return str(photo), str(mask)


def _inpaint_inputs(demo: gr.Blocks) -> list:
    fn = next(f for f in demo.fns.values() if f.api_name == "inpaint")
    return list(fn.inputs)


def _help(capsys) -> str:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["inpaint", "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_every_knob_is_declared_once_as_a_field_of_options():
    assert len(set(NAMES)) == len(NAMES) == len(KNOBS)
    assert NAMES == tuple(f.name for f in dataclasses.fields(Options))
    assert NAMES == ("samples", "seed", "strategy", "margin", "grow", "feather")  # /inpaint's positional order
    chosen = Options()
    assert {name: getattr(chosen, name) for name in NAMES} == options.defaults()
    assert pipeline.Options is Options and pipeline.RANGES == {k.name: (k.low, k.high) for k in NUMERIC}


def test_the_studio_controls_show_each_knob_as_declared(demo):
    controls = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None) in NAMES}
    assert sorted(controls) == sorted(NAMES)
    for knob in KNOBS:
        control = controls[knob.name]
        assert (control.label, control.value) == (knob.label, knob.default), knob.name
        if isinstance(control, gr.Slider):
            assert (control.minimum, control.maximum, control.step) == (knob.low, knob.high, knob.step)
        if knob.choices:
            assert [value for _, value in control.choices] == list(knob.choices)
    run = next(f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_run")
    assert [c.elem_id for c in run.inputs[4:4 + len(NAMES)]] == list(NAMES)  # handed to on_run in the declared order


def test_inpaint_endpoint_takes_the_knobs_in_order_with_their_defaults(demo):
    inputs = _inpaint_inputs(demo)
    kinds = canvas.guide_kinds()
    assert [c.label for c in inputs] == ["image", "mask", "models", *NAMES, *(f"{k} strokes" for k in kinds)]
    assert [c.value for c in inputs[3:3 + len(KNOBS)]] == [k.default for k in KNOBS]
    parameters = demo.get_api_info()["named_endpoints"]["/inpaint"]["parameters"]
    named = {p["parameter_name"]: p for p in parameters}
    for knob in KNOBS:  # gradio_client callers may pass them by these names
        assert named[knob.name]["parameter_has_default"] and named[knob.name]["parameter_default"] == knob.default


def test_cli_flags_have_the_knobs_defaults_and_help(capsys):
    args = cli.build_parser().parse_args(["inpaint", "photo.png", "--mask", "mask.png"])
    assert {name: getattr(args, name) for name in NAMES} == options.defaults()
    text = _help(capsys)
    for knob in KNOBS:
        assert f"--{knob.name}" in text and knob.help in text, knob.name
    for knob in NUMERIC:
        assert f"({knob.low} to {knob.high}; default: {knob.default})" in text, knob.name


def test_the_library_signature_lists_the_knobs():
    import inspect

    parameters = inspect.signature(api.inpaint).parameters
    assert {name: parameters[name].default for name in NAMES} == options.defaults()
    with pytest.raises(InpaintError, match="Unknown option 'margn'"):
        Options.of(margn=3)


def test_a_guide_kind_a_model_declares_gets_its_cli_flag_and_api_input(monkeypatch, files, capsys):
    sketchy = dataclasses.replace(registry.get("telea"), id="sketchy", name="Sketchy (test)", guides=("sketch",))
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (sketchy,))
    assert "sketch" in options.guide_kinds() and "edges" in options.guide_kinds()
    assert "sketch strokes" in [c.label for c in _inpaint_inputs(page.build())]
    text = _help(capsys)
    assert "--sketch IMAGE Sketchy: image of extra sketch strokes" in text and "--edges IMAGE" in text
    code = cli.main(["inpaint", files[0], "--mask", files[1], "-m", "telea", "--sketch", "nope.png"])
    assert code == 2 and "The --sketch image nope.png does not exist." in capsys.readouterr().err


@pytest.mark.parametrize("knob", NUMERIC, ids=lambda k: k.name)
@pytest.mark.parametrize("bad", ["above", "below", "nan"])
def test_every_front_end_refuses_a_knob_out_of_its_range(knob, bad, files, tmp_path, capsys):
    """Options, the library, ``/inpaint`` (by keyword) and the CLI, with one message naming the knob's range."""
    value = {"above": knob.high + 1, "below": knob.low - 1, "nan": math.nan}[bad]
    message = re.escape(f"{knob.name.capitalize()} must be a number from {knob.low} to {knob.high}")
    with pytest.raises(InpaintError, match=message):
        api.inpaint(*files, ["telea"], **{knob.name: value})
    with pytest.raises(gr.Error, match=message):
        endpoints.api_inpaint(*files, ["telea"], **{knob.name: value})
    if bad != "nan":  # argparse refuses "nan" for an int flag itself
        code = cli.main(["inpaint", files[0], "--mask", files[1], "-m", "telea", "-o", str(tmp_path / "out"),
                         f"--{knob.name}", str(value)])
        assert code == 2 and re.search(message, capsys.readouterr().err)


def test_an_unknown_strategy_is_refused_everywhere(files):
    with pytest.raises(InpaintError, match="Unknown strategy 'tile'; choose one of original, resize, crop"):
        api.inpaint(*files, ["telea"], strategy="tile")
    with pytest.raises(gr.Error, match="Unknown strategy 'tile'"):
        endpoints.api_inpaint(*files, ["telea"], strategy="tile")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["inpaint", "p.png", "--mask", "m.png", "--strategy", "tile"])
