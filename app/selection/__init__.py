"""Click to select and find people: segmenters (SAM 2.1, EdgeTAM, SlimSAM) or OpenCV GrabCut turn clicks into
a mask (:mod:`.clicks`), a person detector proposes the people (:mod:`.people`), one select slot at a time
(:mod:`.lane`). The page's panel and endpoints live in :mod:`app.web`; the CLI flags in :mod:`.cli`."""
