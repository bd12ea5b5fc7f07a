"""Hugging Face Space entry point: build the studio and serve it (http://127.0.0.1:7860 locally)."""

from app.ui import launch

if __name__ == "__main__":
    launch()
