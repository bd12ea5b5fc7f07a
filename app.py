"""Hugging Face Space entry point: build the studio and serve it (http://127.0.0.1:7860 locally).

``demo`` is a module-level name on purpose: on a Space, Gradio's reloader looks it up in ``__main__``.
"""

from app.web.page import build
from app.web.serving import launch

demo = build()

if __name__ == "__main__":
    launch(demo)
