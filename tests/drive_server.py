"""A loopback Google Drive that answers the way Drive does, in front of the real gdown code paths.

gdown always asks ``https://drive.google.com/uc?id=...`` (and follows Drive to
``drive.usercontent.google.com``), so there is no base URL to swap without skipping its Drive
handling. Instead :class:`DriveServer` is an HTTPS proxy on 127.0.0.1: requests (gdown's client)
honours ``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` (:func:`use`), opens a CONNECT tunnel, and gets
TLS for Google's host names from a test CA made here. Inside the tunnel it serves what Drive serves
(shapes copied from gdown 6.5's parsers, ``download.py`` / ``download_folder.py``):

* ``/uc?id=`` -> 303 to ``drive.usercontent.google.com/download?id=..&export=download``;
* that answers the file with ``Content-Disposition``, or for ``confirm`` files first the virus-scan
  page (``<form id="download-form">`` with hidden ``id/export/confirm/uuid``), for ``quota`` files
  Drive's "Too many users have viewed or downloaded this file recently" page, for ``html`` files
  a web page under the file's name, for ``drip`` files a few bytes every 50 ms;
* ``private`` files redirect to a Google sign-in page; ``gone`` and unknown ids get Drive's 404 page;
* ``/embeddedfolderview?id=`` lists a folder (``<title>`` and ``/file/d/<id>/view`` links), 404 else.
"""

from __future__ import annotations

import datetime
import html
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com", "accounts.google.com")
QUOTA = ("Too many users have viewed or downloaded this file recently. Please try accessing the file again later. "
         "If the file you are trying to access is particularly large or is shared with many people, it may take up "
         "to 24 hours to be able to view or download the file. If you still can't access a file after 24 hours, "
         "contact your domain administrator.")
NOT_FOUND = ("<!DOCTYPE html><html lang=\"en\"><head><title>Google Drive - Page Not Found</title></head>"
             "<body><p>Sorry, the file you have requested does not exist.</p></body></html>")
SIGN_IN = "<!DOCTYPE html><html><head><title>Sign in - Google Accounts</title></head><body>Sign in</body></html>"
DRIP = (64, 0.05)  # bytes, seconds: 1.3 kB/s


def drive_id(n: int) -> str:
    """A Drive-shaped id (33 characters; gdown's folder parser wants at least 25)."""
    return f"1TestDriveId{n:021d}"


class DriveServer(ThreadingHTTPServer):
    """Drive's hosts behind a CONNECT proxy.

    ``files``: id -> (name, bytes); ``folders``: id -> (title, child ids); ``modes``: id -> "confirm" |
    "quota" | "html" | "drip" | "private" | "gone" (listed, but deleted); ``requests``: "GET host/path?query".
    """

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Proxy)
        self.tls = tls
        self.files: dict[str, tuple[str, bytes]] = {}
        self.folders: dict[str, tuple[str, list[str]]] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def asked(self, path: str) -> list[str]:
        """The requests whose path (host + path) is ``path``."""
        return [r for r in self.requests if r.split(" ", 1)[1].split("?")[0] == path]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Proxy(BaseHTTPRequestHandler):
    server: DriveServer

    def log_message(self, *args) -> None:
        pass

    def do_CONNECT(self) -> None:
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        try:
            tunnel = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            _Drive(tunnel, self.client_address, self.server)
        except OSError:  # the client went away (a stopped download)
            pass


class _Drive(BaseHTTPRequestHandler):
    """One TLS tunnel: Drive's pages, keep-alive as requests expects."""

    protocol_version = "HTTP/1.1"
    server: DriveServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._route(body=True)

    def do_HEAD(self) -> None:
        self._route(body=False)

    def _route(self, body: bool) -> None:
        host = self.headers.get("Host", "").split(":")[0]
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append(f"{self.command} {host}{url.path}?{url.query}")
        file_id = query.get("id", "")
        if (host, url.path) == ("drive.google.com", "/uc"):
            self._uc(file_id, body)
        elif (host, url.path) == ("drive.usercontent.google.com", "/download"):
            self._download(file_id, query, body)
        elif (host, url.path) == ("drive.google.com", "/embeddedfolderview"):
            self._folder(file_id, body)
        elif host == "accounts.google.com":
            self._page(200, SIGN_IN, body)
        else:
            self._page(404, NOT_FOUND, body)

    def _uc(self, file_id: str, body: bool) -> None:
        if file_id not in self.server.files or self.server.modes.get(file_id) == "gone":
            self._page(404, NOT_FOUND, body)
        elif self.server.modes.get(file_id) == "private":
            self._redirect(302, f"https://accounts.google.com/ServiceLogin?continue=https://drive.google.com/uc?id%3D"
                                f"{file_id}")
        else:
            self._redirect(303, f"https://drive.usercontent.google.com/download?id={file_id}&export=download")

    def _download(self, file_id: str, query: dict[str, str], body: bool) -> None:
        if file_id not in self.server.files:
            return self._page(404, NOT_FOUND, body)
        name, data = self.server.files[file_id]
        mode = self.server.modes.get(file_id, "")
        if mode == "quota":
            return self._page(200, _quota_page(), body)
        if mode == "confirm" and (query.get("confirm"), query.get("uuid")) != ("t", _uuid(file_id)):
            return self._page(200, _virus_scan_page(file_id, name, len(data)), body)
        if mode == "html":
            data = f"<!DOCTYPE html><html><head><title>{html.escape(name)}</title></head></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'attachment; filename="{name}"')
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Last-Modified", "Tue, 18 Jun 2019 10:00:00 GMT")
        self.end_headers()
        if not body:
            return None
        if mode == "drip":
            return self._drip(data)
        self.wfile.write(data)
        return None

    def _drip(self, data: bytes) -> None:
        size, pause = DRIP
        end = time.monotonic() + 30
        for start in range(0, len(data), size):
            if time.monotonic() > end:
                break
            self.wfile.write(data[start:start + size])
            self.wfile.flush()
            time.sleep(pause)
        self.close_connection = True

    def _folder(self, folder_id: str, body: bool) -> None:
        if folder_id not in self.server.folders:
            return self._page(404, NOT_FOUND, body)
        title, children = self.server.folders[folder_id]
        entries = []
        for child in children:
            if child in self.server.folders:
                href, name = f"https://drive.google.com/drive/folders/{child}", self.server.folders[child][0]
            else:
                href, name = f"https://drive.google.com/file/d/{child}/view?usp=drive_web", self.server.files[child][0]
            entries.append(f'<div class="flip-entry" id="entry-{child}"><a href="{href}" target="_blank">'
                           f'<div class="flip-entry-title">{html.escape(name)}</div></a></div>')
        page = (f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>"
                f"<div class=\"flip-entries\">{''.join(entries)}</div></body></html>")
        return self._page(200, page, body)

    def _redirect(self, status: int, location: str) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _page(self, status: int, text: str, body: bool) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


def _uuid(file_id: str) -> str:
    return f"uuid-{file_id[-6:]}"


def _virus_scan_page(file_id: str, name: str, size: int) -> str:
    """Drive's "can't scan this file for viruses" page, on one line as Drive sends it (gdown parses line by line)."""
    return ("<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
            "<div class=\"uc-main\"><div id=\"uc-text\"><p class=\"uc-warning-caption\">Google Drive can't scan this "
            f"file for viruses.</p><p class=\"uc-warning-subcaption\"><span class=\"uc-name-size\"><a href=\"/open?id="
            f"{file_id}\">{html.escape(name)}</a> ({size // 1000}K)</span> is too large for Google to scan for "
            "viruses. Would you still like to download this file?</p><form id=\"download-form\" action=\"https://drive."
            "usercontent.google.com/download\" method=\"get\"><input type=\"submit\" id=\"uc-download-link\" "
            "class=\"goog-inline-block jfk-button jfk-button-action\" value=\"Download anyway\"/>"
            f"<input type=\"hidden\" name=\"id\" value=\"{file_id}\"><input type=\"hidden\" name=\"export\" "
            "value=\"download\"><input type=\"hidden\" name=\"confirm\" value=\"t\"><input type=\"hidden\" "
            f"name=\"uuid\" value=\"{_uuid(file_id)}\"></form></div></div></body></html>")


def _quota_page() -> str:
    return ("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>\n"
            "<div class=\"uc-main\"><div id=\"uc-text\">\n"
            "<p class=\"uc-error-caption\">Sorry, you can&#39;t view or download this file at this time.</p>\n"
            f"<p class=\"uc-error-subcaption\">{QUOTA}</p>\n"
            "</div></div></body></html>")


# --------------------------------------------------------------------------- TLS


def make_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A test CA (its PEM is returned for REQUESTS_CA_BUNDLE) and a server context for Google's host names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inpaint-studio test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(leaf.public_bytes(pem) + key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem")
    return context, folder / "ca.pem"


def use(monkeypatch: pytest.MonkeyPatch, proxy: str, ca: Path) -> None:
    """Send requests' (gdown's) https:// traffic through ``proxy``, trusting ``ca``; loopback stays direct."""
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
