"""The selection flags of ``python -m app inpaint``: ``--select x,y``, ``--select-remove``, ``--select-box``,
``--erase-people``, ``--find-text``.

They add to the hole (unioned with ``--mask`` when both are given), so a photo can be erased
from the command line without drawing a mask: ``--select 812,430`` erases the object under that
pixel, ``--erase-people`` everyone but the subject, ``--find-text`` the lettering (a folder of comic
pages cleaned in one command). Coordinates are the photo's own pixels
(as displayed, EXIF rotation applied). The method used is reported per image on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from app import options
from app.errors import InpaintError
from app.images import Photo
from app.selection import clicks, people, text

Selector = Callable[[Photo, str], np.ndarray]  # (photo, its name for messages) -> the hole to add


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("click to select (instead of, or on top of, --mask)")
    group.add_argument("--select", action="append", type=_pair, metavar="X,Y", default=[],
                       help="erase the object under this pixel of the photo (repeatable: several points of one "
                            "object); the segmentation model when its weights can be had, else OpenCV GrabCut")
    group.add_argument("--select-remove", action="append", type=_pair, metavar="X,Y", default=[],
                       help="a pixel that is NOT part of the selected object (repeatable)")
    group.add_argument("--select-box", type=_box, metavar="X0,Y0,X1,Y1",
                       help="erase the object inside this box (with or without --select points)")
    group.add_argument("--select-grow", type=int, default=0, metavar="PX",
                       help="widen the selection by PX pixels (0 to 64; --grow still applies to the whole hole)")
    group.add_argument("--erase-people", action="store_true",
                       help="detect the people and erase everyone but the subject (the largest, most central person)")
    group.add_argument("--find-text", action="store_true",
                       help="find the text (comic lettering, captions) with the text segmenter and erase it")
    group.add_argument("--text-grow", type=int, default=text.DEFAULT_GROW, metavar="PX",
                       help=f"widen the text found by PX pixels (0 to 64, default {text.DEFAULT_GROW}): the letters' "
                            "soft edge and outline")


def _numbers(text: str, count: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise argparse.ArgumentTypeError(f"{text!r} is not {count} numbers separated by commas")
    return values


def _pair(text: str) -> list[float]:
    return _numbers(text, 2)


def _box(text: str) -> list[float]:
    return _numbers(text, 4)


def wants_selection(args: argparse.Namespace) -> bool:
    return bool(args.select or args.select_remove or args.select_box or args.erase_people or args.find_text)


def check(args: argparse.Namespace) -> None:
    """Argument errors (exit 2) before any work."""
    if args.mask is None and not wants_selection(args):
        raise InpaintError("Say what to erase: --mask, --select X,Y, --select-box, --erase-people or --find-text.")
    if (args.select or args.select_remove or args.select_box) and args.image.is_dir():
        raise InpaintError("--select points are pixels of one photo: give a photo, not the folder "
                           f"{args.image} (--erase-people and --find-text work on folders).")
    if args.select_remove and not (args.select or args.select_box):
        raise InpaintError("--select-remove only refines a selection: add --select X,Y or --select-box.")
    if args.find_text:
        options.knob("grow").check(args.text_grow)  # out of range: the grow knob's message, before any work


def selector(args: argparse.Namespace) -> Selector | None:
    """The function adding the selection and/or the photobombers to each image's hole, or None."""
    if not wants_selection(args):
        return None
    points = [[x, y, 1] for x, y in args.select] + [[x, y, 0] for x, y in args.select_remove]

    def selected(photo: Photo, name: str) -> np.ndarray:
        hole = np.zeros((photo.size[1], photo.size[0]), bool)
        if points or args.select_box:
            chosen = clicks.select(photo, points, args.select_box, grow=args.select_grow)
            print(f"{name}: selected {int(chosen.mask.sum())} px with {chosen.method} in {chosen.seconds:.2f} s"
                  + (f" ({chosen.note})" if chosen.note else ""), file=sys.stderr)
            hole |= chosen.mask
        if args.erase_people:
            found = people.find_people(photo)
            bombers = [p for p in found if not p.is_subject]
            print(f"{name}: {len(found)} people found, erasing {len(bombers)} (everyone but the subject)",
                  file=sys.stderr)
            if bombers:
                hole |= people.photobombers_mask(found)
        if args.find_text:
            hole |= _text(photo, name, args.text_grow)
        return hole

    return selected


def _text(photo: Photo, name: str, grow: int) -> np.ndarray:
    """The lettering of one photo, reported on stderr (nothing found is said too: the page may have none)."""
    found = text.find_text(photo, grow=grow)
    share = found.mask.mean()
    print(f"{name}: " + (f"text found on {share:.1%} of the photo" if share else "no text found")
          + f" with {found.method} in {found.seconds:.2f} s (grown {found.grow} px)", file=sys.stderr)
    return found.mask
