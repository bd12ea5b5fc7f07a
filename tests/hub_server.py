"""A tiny Hugging Face Hub-compatible file server for tests (127.0.0.1, random port).

It implements what ``huggingface_hub.hf_hub_download`` needs and nothing more:
``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with ``X-Repo-Commit``,
``ETag`` (+ ``X-Linked-Etag``/``X-Linked-Size`` = sha256/size for LFS files, here every
``*.safetensors``), ``Content-Length``, ``Range: bytes=N-``; the Hub's ``X-Error-Code``
404s (RepoNotFound / RevisionNotFound / EntryNotFound); and
``GET /api/models/{repo_id}/revision/{revision}`` (and ``/api/models/{repo_id}``: the default branch,
``main``). For ``HfApi.create_repo``/``upload_folder``
/``create_tag`` (with ``HF_HUB_DISABLE_XET=1``: the legacy LFS protocol, not Xet) it also takes
``POST /api/repos/create``, ``/api/validate-yaml``, ``.../preupload/{rev}``, the LFS batch API, ``PUT`` of the LFS
object, ``.../commit/{rev}`` (NDJSON) and ``.../tag/{rev}``. Point huggingface_hub at it with
``HF_ENDPOINT=server.url``. Every request is logged in ``server.requests``.

Faults, per (repo, file): ``lies`` (a wrong sha256 in the headers), ``cut_once``/``cut_always``
(half the body, then the connection drops), ``drip`` (the headers, then N bytes every T seconds:
a Hub that is slow but never silent long enough for a read timeout) and ``stall`` (half the body,
then nothing until the fault is removed or the server stops). Removing a ``drip``/``stall`` entry
(the network is back) ends the slow responses already in flight, by closing their connections.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import yaml

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")  # no revision: main
_WRITE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit|tag)/(?P<rev>[^/]+)$")
_LFS_BATCH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$")


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> sha


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None


class HubServer:
    """``with HubServer() as hub: hub.add(...)`` — serves until the block ends or :meth:`stop`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.lies: dict[tuple[str, str], str] = {}  # (repo, file) -> sha256 claimed in X-Linked-Etag
        self.cut_once: set[tuple[str, str]] = set()  # (repo, file) whose next full GET stops halfway
        self.cut_always: set[tuple[str, str]] = set()  # (repo, file) whose every GET stops halfway (network gone)
        self.drip: dict[tuple[str, str], tuple[int, float]] = {}  # (repo, file) -> send N bytes every T seconds
        self.stall: set[tuple[str, str]] = set()  # (repo, file) whose GETs send half the body, then nothing
        self.stopping = threading.Event()  # ends drips and stalls in flight
        self.lfs: dict[str, bytes] = {}  # uploaded LFS objects by sha256
        self.validated: list[dict] = []  # model-card metadata seen by /api/validate-yaml
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        # A short poll: stopping the server (every test's teardown) waits up to one poll interval.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, files: dict[str, bytes], refs: tuple[str, ...] = ("main",)) -> str:
        """Commit ``files`` (on top of nothing) to ``repo_id``, point ``refs`` at it; return the sha."""
        repo = self.repos.setdefault(repo_id, Repo())
        sha = hashlib.sha1(repr((repo_id, len(repo.commits), sorted(files))).encode()).hexdigest()
        repo.commits[sha] = dict(files)
        for ref in refs:
            repo.refs[ref] = sha
        return sha

    def paths(self, method: str = "GET") -> list[str]:
        return [r.path for r in self.requests if r.method == method]

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def resolve(self, repo_id: str, revision: str) -> tuple[str | None, dict[str, bytes] | None, str]:
        """(commit, files, error code) of ``repo_id`` at ``revision``."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return None, None, "RepoNotFound"
        sha = repo.refs.get(revision, revision)
        if sha not in repo.commits:
            return None, None, "RevisionNotFound"
        return sha, repo.commits[sha], ""


def etag_of(name: str, data: bytes) -> tuple[str, bool]:
    """(etag, is_lfs): sha256 for LFS files, the git blob sha1 otherwise — as the Hub does."""
    if name.endswith(".safetensors"):
        return hashlib.sha256(data).hexdigest(), True
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), False


def _handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            path = unquote(self.path.split("?", 1)[0])
            server.requests.append(Request(self.command, path, self.headers.get("Range")))
            if match := _RESOLVE.match(path):
                return self._file(match["repo"], match["rev"], match["file"], body)
            if match := _API.match(path):
                return self._info(match["repo"], match["rev"] or "main")
            self._send(404, b"", {"X-Error-Code": "RepoNotFound"})

        def do_POST(self) -> None:
            path = unquote(self.path.split("?", 1)[0])
            server.requests.append(Request("POST", path, None))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path == "/api/repos/create":
                return self._create(json.loads(body))
            if path == "/api/validate-yaml":
                return self._validate_yaml(json.loads(body)["content"])
            if match := _LFS_BATCH.match(path):
                return self._lfs_batch(json.loads(body))
            if match := _WRITE.match(path):
                return getattr(self, f"_{match['op']}")(match["repo"], match["rev"], body)
            self._send(404, b"", {})

        def do_PUT(self) -> None:
            server.requests.append(Request("PUT", self.path, None))
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            server.lfs[self.path.rsplit("/", 1)[-1]] = data
            self._send(200, b"", {})

        def _json(self, payload: dict, status: int = 200) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def _create(self, payload: dict) -> None:
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in server.repos:  # the Hub's 409 carries the url too
                return self._json({"error": "You already created this model repo", "url": f"{server.url}/{repo_id}"},
                                  409)
            server.add(repo_id, {})
            self._json({"url": f"{server.url}/{repo_id}", "name": repo_id})

        def _validate_yaml(self, content: str) -> None:
            """Like the Hub: the README's front matter must be a YAML mapping (we also want a licence)."""
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            meta = yaml.safe_load(match[1]) if match else None
            if not isinstance(meta, dict) or "license" not in meta:
                return self._json({"errors": [{"message": "no license in the YAML front matter"}]}, 400)
            server.validated.append(meta)
            self._json({"errors": [], "warnings": []})

        def _preupload(self, repo_id: str, revision: str, body: bytes) -> None:
            files = json.loads(body)["files"]
            self._json({"files": [{"path": f["path"], "shouldIgnore": False,
                                   "uploadMode": "lfs" if f["path"].endswith(".safetensors") else "regular"}
                                  for f in files]})

        def _lfs_batch(self, payload: dict) -> None:
            objects = [{"oid": o["oid"], "size": o["size"],
                        "actions": {"upload": {"href": f"{server.url}/lfs-upload/{o['oid']}"}}}
                       for o in payload["objects"]]
            self._json({"transfer": "basic", "objects": objects})

        def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
            parent, files, error = server.resolve(repo_id, revision)
            if error:
                return self._send(404, b"", {"X-Error-Code": error})
            files = dict(files)
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "lfsFile":
                    files[item["value"]["path"]] = server.lfs[item["value"]["oid"]]
            sha = server.add(repo_id, files, refs=(revision,))
            self._json({"commitUrl": f"{server.url}/{repo_id}/commit/{sha}", "commitOid": sha})

        def _tag(self, repo_id: str, revision: str, body: bytes) -> None:
            sha, _, error = server.resolve(repo_id, revision)
            tag = json.loads(body)["tag"]
            if error or tag in server.repos[repo_id].refs:
                return self._send(409 if not error else 404, b"", {"X-Error-Code": error} if error else {})
            server.repos[repo_id].refs[tag] = sha
            self._json({})

        def _info(self, repo_id: str, revision: str) -> None:
            sha, files, error = server.resolve(repo_id, revision)
            if error:
                return self._send(404, b"", {"X-Error-Code": error})
            info = {"id": repo_id, "sha": sha, "siblings": [{"rfilename": name} for name in sorted(files)]}
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})

        def _file(self, repo_id: str, revision: str, name: str, body: bool) -> None:
            sha, files, error = server.resolve(repo_id, revision)
            if error or name not in files:
                headers = {"X-Error-Code": error or "EntryNotFound"}
                if sha:
                    headers["X-Repo-Commit"] = sha
                return self._send(404, b"", headers)
            data = files[name]
            etag, lfs = etag_of(name, data)
            etag = server.lies.get((repo_id, name), etag)
            headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
            if lfs:
                headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
            start = _range_start(self.headers.get("Range"))
            if body and ((repo_id, name) in server.drip or (repo_id, name) in server.stall):
                if start:
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return self._slow((repo_id, name), data[start:], headers, 206 if start else 200)
            if body and (repo_id, name) in server.cut_always:
                if start:
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return self._cut(data[start:], headers, 206 if start else 200)
            if start:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return self._send(206, data[start:], headers, body)
            if body and (repo_id, name) in server.cut_once:
                server.cut_once.discard((repo_id, name))
                return self._cut(data, headers)
            self._send(200, data, headers, body)

        def _cut(self, data: bytes, headers: dict[str, str], status: int = 200) -> None:
            """Announce the whole file, send half, drop the connection (a flaky network)."""
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True

        def _slow(self, key: tuple[str, str], data: bytes, headers: dict[str, str], status: int) -> None:
            """Announce the whole body, then drip it or send half and fall silent, while the fault lasts."""
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.close_connection = True  # the body is never complete: this connection is done afterwards
            sent = len(data) // 2 if key in server.stall else 0
            self.wfile.write(data[:sent])
            self.wfile.flush()
            try:
                while sent < len(data) and (key in server.drip or key in server.stall):
                    if server.stopping.wait(0.05 if key in server.stall else server.drip[key][1]):
                        return
                    if key in server.drip:
                        count = server.drip[key][0]
                        self.wfile.write(data[sent:sent + count])
                        self.wfile.flush()
                        sent += count
            except (OSError, KeyError):  # the client gave up (or the fault was removed meanwhile)
                return

        def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool = True) -> None:
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def _range_start(header: str | None) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match[1]) if match else 0
