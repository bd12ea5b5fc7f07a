"""Find the people: the detector fetched at its pin from the (loopback) Hub, masks per box, the subject rule.

The detector and segmenters are real ``transformers`` models at toy size with random weights
(:mod:`tests.tiny_pretrained`): with the threshold at 0 every query is a "person", which is
what the plumbing tests need (boxes inside the photo, one mask each at its size, one subject).
"""

from __future__ import annotations

import numpy as np
import pytest
from huggingface_hub import constants

from app import registry
from app.errors import InpaintError, ModelUnavailableError
from app.selection import clicks as selection
from app.selection import people
from app.selection.segmenters import get_segmenter
from tests import tiny_pretrained
from tests.helpers import scene


def test_the_subject_is_the_largest_most_central_person():
    size = (1000, 600)
    centre, edge, small = (400, 100, 600, 600), (0, 50, 260, 600), (480, 300, 520, 400)
    assert people.subject_index([edge, centre, small], size) == 1
    assert people.subject_index([small], size) == 0
    assert people.subject_index([], size) is None
    huge_at_edge = (0, 0, 450, 600)
    assert people.subject_index([centre, huge_at_edge], size) == 1  # much larger wins even off centre


def test_photobombers_mask_is_everyone_but_the_subject():
    def person(col: int, subject: bool) -> people.Person:
        mask = np.zeros((4, 4), bool)
        mask[:, col] = True
        return people.Person(mask, (col, 0, col + 1, 4), 0.9, subject, "grabcut")

    found = [person(0, True), person(1, False), person(2, False)]
    assert people.photobombers_mask(found).sum() == 8
    assert people.photobombers_mask(found, erase=[True, False, False]).sum() == 4
    with pytest.raises(InpaintError, match="Nobody"):
        people.photobombers_mask([])


def test_without_the_detector_finding_people_is_a_clear_message(hub_env, monkeypatch):
    """Its pinned commit missing from the Hub, or no Hub at all: say so, and what to do instead."""
    with pytest.raises(ModelUnavailableError, match="person detector.*pinned commit.*Click on each person"):
        people.find_people(scene()[0])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="person detector.*offline.*Click on each person"):
        people.find_people(scene()[0])
    assert people.detector_status()["ready"] is False


def test_people_are_detected_masked_by_box_and_the_subject_marked(hub_env, pins_file):
    tiny_pretrained.serve(hub_env, registry.pretrained("rtdetr-v2-r18"), pins_file)
    segmenter = registry.pretrained("sam2.1-hiera-tiny")
    tiny_pretrained.serve(hub_env, segmenter, pins_file)
    assert people.detector_status()["ready"] is True
    rgb = scene(320, 200)[0]
    found = people.find_people(rgb, threshold=0.0, grow=4)
    assert found and sum(p.is_subject for p in found) == 1
    for person in found:
        x0, y0, x1, y1 = person.box
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 200
        assert person.mask.shape == (200, 320) and person.method == segmenter.id
    # A click on the same photo reuses the embedding the people's masks were drawn on.
    assert selection.select(rgb, [[100, 100, 1]]).reused_embedding
    assert get_segmenter(segmenter).encodes == 1


def test_without_the_segmenter_people_are_masked_with_grabcut(hub_env, pins_file):
    tiny_pretrained.serve(hub_env, registry.pretrained("rtdetr-v2-r18"), pins_file)
    found = people.find_people(scene(160, 100)[0], threshold=0.0, segmenter="grabcut")
    assert found and all(p.method == "grabcut" and p.mask.shape == (100, 160) for p in found)


def test_a_bad_threshold_is_a_message(hub_env):
    with pytest.raises(InpaintError, match="threshold"):
        people.find_people(scene()[0], threshold=2)
