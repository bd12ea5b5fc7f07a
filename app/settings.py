"""Environment the studio needs before Gradio is imported.

Imported first by the ``app`` package, so it runs before ``app.web`` (or anything else of the
package) imports Gradio: some Gradio modules read ``GRADIO_TEMP_DIR`` once, at import, while
:func:`gradio.utils.get_upload_folder` reads it at each call. ``setdefault``: the environment
(tests, a Space's settings) still wins.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Uploads, editor layers and results in a folder of the studio's own, which app.disk sweeps.
os.environ.setdefault("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "inpaint-studio"))
