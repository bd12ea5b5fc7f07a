"""What the click-to-select panel keeps per visitor (issue 24): small packed masks, capped, freed.

:class:`app.web.kept_masks.Packed` must give back exactly the mask it packed, at a size that follows
the object rather than the photo; :class:`app.web.kept_masks.Store` frees a session's masks on
request, after its time to live, past the cap on all sessions (least recently used first), and
refuses a selection past the cap of one session with a message.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.web.kept_masks import Packed, SelectionExpired, SelectionTooLarge, Store


def ellipse(h: int, w: int, centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, centre, axes, 20, 0, 360, 1, -1)
    return mask.astype(bool)


@pytest.mark.parametrize("shape", [(300, 500), (7, 3), (1, 1)])
def test_a_packed_mask_comes_back_bit_for_bit(shape):
    rng = np.random.default_rng(0)
    for mask in (rng.random(shape) > 0.7, np.zeros(shape, bool), np.ones(shape, bool)):
        packed = Packed.of(mask)
        assert packed.full().shape == shape and (packed.full() == mask).all()
        canvas = rng.random(shape) > 0.5
        assert (packed.add_to(canvas.copy()) == (canvas | mask)).all()


def test_a_packed_mask_follows_the_object_not_the_photo():
    """An object on a 47 MP photo keeps a few tens of kB, where the boolean array took 47 MB."""
    small = Packed.of(ellipse(600, 800, (480, 300), (120, 180)))
    large = Packed.of(ellipse(6000, 8000, (4800, 3000), (1200, 1800)))
    print(f"\nan object of a third of the photo: {small.nbytes / 1e3:.1f} kB at 0.5 MP, "
          f"{large.nbytes / 1e3:.1f} kB at 48 MP (the boolean array: 48,000 kB)")
    assert large.nbytes < 100_000 and small.nbytes < 10_000


def test_the_preview_of_a_packed_mask_matches_scaling_the_whole_mask():
    mask = ellipse(3000, 4000, (2400, 1500), (600, 900))
    small = Packed.of(mask).scaled((1024, 768))
    reference = cv2.resize(mask.view(np.uint8), (1024, 768), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert small.shape == (768, 1024)
    assert (small != reference).mean() < 0.002  # the edge may move by a preview pixel
    assert not Packed.of(np.zeros((30, 40), bool)).scaled((8, 6)).any()


def test_a_session_is_freed_on_request_and_after_its_time_to_live():
    now = [0.0]
    store = Store(ttl_s=120, clock=lambda: now[0])
    key = store.put("a", ellipse(100, 100, (50, 50), (20, 30)))
    other = store.put("b", ellipse(100, 100, (50, 50), (20, 30)))
    assert store.get("a", key).full().any() and store.sessions() == 2
    store.forget("a")
    with pytest.raises(SelectionExpired, match="click on what should go again"):
        store.get("a", key)
    now[0] = 121.0  # b unused for over two minutes
    with pytest.raises(SelectionExpired, match="not used for 2 minutes"):
        store.get("b", other)
    assert store.sessions() == 0 and store.nbytes() == 0


def test_settling_frees_what_the_selection_no_longer_uses_but_the_one_before():
    store = Store(ttl_s=60)
    first = store.put("a", np.ones((10, 10), bool))
    store.settle("a", [first])
    second = store.put("a", np.eye(10, dtype=bool))
    store.settle("a", [second])  # an event still running on the first selection may read it
    assert store.get("a", first) and store.get("a", second)
    third = store.put("a", np.eye(10, dtype=bool))
    store.settle("a", [third])
    with pytest.raises(SelectionExpired):
        store.get("a", first)
    store.settle("a", [])
    store.settle("a", [])
    assert store.nbytes("a") == 0 and store.sessions() == 0


def test_one_visitor_past_the_cap_is_refused_with_a_message():
    store = Store(ttl_s=60, session_mb=0.01)  # 10 kB
    noise = np.random.default_rng(1).random((300, 400)) > 0.5  # 15 kB of incompressible bits
    with pytest.raises(SelectionTooLarge, match="too detailed to keep"):
        store.put("a", noise)
    assert store.put("a", np.ones((200, 400), bool))  # a plain object still fits


def test_past_the_cap_on_all_visitors_the_least_recently_used_go_first():
    now = [0.0]
    store = Store(ttl_s=600, total_mb=0.02, clock=lambda: now[0])  # 20 kB
    noise = np.random.default_rng(2).random((100, 400)) > 0.5  # ~5 kB each
    keys = {}
    for i, session in enumerate("abcde"):
        now[0] = float(i)
        keys[session] = store.put(session, noise)
    assert store.nbytes() <= store.total_cap()
    with pytest.raises(SelectionExpired):
        store.get("a", keys["a"])
    assert store.get("e", keys["e"])
