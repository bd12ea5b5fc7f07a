"""The page's keys and the scroll to the results: small scripts that press the page's own buttons.

Every key does what a visible control does (the editor's brush size slider and colour swatches,
Erase, Cancel, the editor's Undo), so a key never reaches past what a click could do, and nothing
fires while the visitor types in a field. The keys are those of the photo editors people know.
"""

from __future__ import annotations

from pathlib import Path

#: Shown under the canvas (the guide key only where a model takes guides).
LEGEND = ("Keys: <kbd>[</kbd> <kbd>]</kbd> brush size · {guide}<kbd>E</kbd> or <kbd>Ctrl</kbd>+<kbd>Enter</kbd> "
          "erase · <kbd>Ctrl</kbd>+<kbd>Z</kbd> undo the last stroke · <kbd>Esc</kbd> cancel a run")
GUIDE_KEY = "<kbd>X</kbd> hole / guide brush · "


def legend(guides: bool) -> str:
    return LEGEND.format(guide=GUIDE_KEY if guides else "")


#: Installed once when the page loads (``launch(js=...)``): ``keys.js`` beside this file.
KEYS_JS = (Path(__file__).parent / "keys.js").read_text(encoding="utf-8")

#: Brings the comparison into view once the first fills are on the page (desktop and phone alike), after the
#: page has settled: Cancel hiding again moves everything below it up (on a phone by a whole button row).
SHOW_RESULTS_JS = """() => setTimeout(
  () => document.querySelector('#view')?.scrollIntoView({behavior: 'smooth', block: 'start'}), 300)"""
