"""A loopback HTTP server standing in for an authors' release server (mmagic's download.openmmlab.com, GitHub
releases); the ``files`` fixture of :mod:`tests.plugins.loopback` starts one per test."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Files(ThreadingHTTPServer):
    """Serves ``files`` by path; ``cut`` paths send half their body under the full Content-Length;
    ``redirects`` paths answer 302 with that ``Location``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.redirects: dict[str, str] = {}
        self.gets: list[str] = []
        self.heads: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: Files

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self.server.heads.append(self.path)
        if self._redirected():
            return
        self.send_response(200 if self.path in self.server.files else 404)
        self.send_header("Content-Length", str(len(self.server.files.get(self.path, b""))))
        self.end_headers()

    def _redirected(self) -> bool:
        if self.path not in self.server.redirects:
            return False
        self.send_response(302)
        self.send_header("Location", self.server.redirects[self.path])
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self) -> None:
        self.server.gets.append(self.path)
        if self._redirected():
            return
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if self.path in self.server.cut else data)
        self.close_connection = True
