"""A small stand-in for the Hugging Face Hub HTTP API, for tests that drive the real huggingface_hub client.

huggingface_hub reads HF_ENDPOINT when it is imported, so point a fresh process at ``hub.url``. Model repos only:

    HEAD|GET /{org}/{name}/resolve/{revision}/{path}        regular file, or a 302 to the LFS "CDN" below
    GET      /api/models/{org}/{name}[/revision/{revision}]  model info: sha and siblings
    GET      /api/models/{org}/{name}/tree/{revision}[/{dir}]?recursive=...  file/directory listing
    HEAD|GET http://localhost:{port}/lfs/{sha256}            LFS blob

Revisions "main" and the repo's fake commit sha are known; anything else answers RevisionNotFound.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

_RESOLVE = re.compile(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")
_API = re.compile(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+)|/tree/([^/]+)(?:/(.*))?)?")
_LFS = re.compile(r"/lfs/([0-9a-f]{64})")


def fake_sha(repo_id: str) -> str:
    """The fixed commit sha a repo is served at (the client stores snapshots under it)."""
    return hashlib.sha1(repo_id.encode()).hexdigest()


class _File:
    def __init__(self, data: bytes, lfs: bool):
        self.data, self.lfs = data, lfs
        self.sha256 = hashlib.sha256(data).hexdigest()
        # The Hub's ETag for a regular file is its git blob id; an LFS file is stored in git as a pointer file.
        self.pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(data)}\n"
        self.oid = _git_blob_id(self.pointer.encode() if lfs else data)


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """``with FakeHub({"org/name": folder}) as hub:`` serves each folder's files (read once, at add time).

    Failure knobs, all plain attributes a test may change while the server runs:
      gated          repo ids answering 401 + X-Error-Code GatedRepo on every endpoint.
      server_errors  repo ids (every endpoint) or (repo_id, path) pairs (that file's /resolve) answering error_status.
      errors_left    how many of those 5xx to give before answering normally again; None = never recover.
      retry_after    Retry-After seconds sent with 5xx (the client then sleeps retry_after + 1 s between its
                     retries instead of 1, 2, 4, 8, 8 s); None sends no header.
    Files of lfs_threshold bytes or more are served the LFS way: a 302 with X-Linked-Etag (sha256)/X-Linked-Size
    to localhost:{port}, a host the client treats as a CDN, as huggingface.co does.
    ``requests`` records (method, path with query) of every request received, in order.
    """

    def __init__(self, repos: dict[str, Path] | None = None, *, gated=(), server_errors=(), error_status: int = 500,
                 errors_left: int | None = None, retry_after: int | None = 0, lfs_threshold: int = 10_000):
        self.repos: dict[str, dict[str, _File]] = {}
        self.gated, self.server_errors = set(gated), set(server_errors)
        self.error_status, self.errors_left, self.retry_after = error_status, errors_left, retry_after
        self.lfs_threshold = lfs_threshold
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        for repo_id, folder in (repos or {}).items():
            self.add_repo(repo_id, folder)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        port = self._server.server_address[1]
        self.url, self.cdn_url = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def client_env(self, hf_home: Path, **extra: str) -> dict[str, str]:
        """This process's environment for a fresh interpreter that downloads from this hub into `hf_home`.

        huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when imported, hence a fresh process. No
        FINEFACE_* variable is passed on (only `extra`'s), so every model comes from this hub.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "FINEFACE_"))
               and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env.update({"HF_ENDPOINT": self.url, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0",
                    "HF_HUB_DISABLE_TELEMETRY": "1", "NO_PROXY": "127.0.0.1,localhost",
                    "no_proxy": "127.0.0.1,localhost", **extra})
        return env

    def add_repo(self, repo_id: str, folder: Path) -> None:
        files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
        self.repos[repo_id] = {
            p.relative_to(folder).as_posix(): _File(p.read_bytes(), p.stat().st_size >= self.lfs_threshold)
            for p in files
        }

    sha = staticmethod(fake_sha)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def answer(self, method: str, raw_path: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append((method, raw_path))
        url = urlsplit(raw_path)
        if m := _LFS.fullmatch(url.path):
            blob = next((f for files in self.repos.values() for f in files.values() if f.sha256 == m[1]), None)
            return (200, {"ETag": f'"{blob.sha256}"'}, blob.data) if blob else _error(404, "EntryNotFound")
        if m := _RESOLVE.fullmatch(url.path):
            repo_id, revision, path, kind = m[1], unquote(m[2]), unquote(m[3]), "resolve"
        elif m := _API.fullmatch(url.path):
            repo_id, revision, kind = m[1], unquote(m[2] or m[3] or "main"), "tree" if m[3] else "info"
            path = unquote(m[4] or "")
        else:
            return _error(404, None, f"fake hub does not serve {url.path}")
        if repo_id in self.gated:  # before the existence check, so a gated id needs no content
            return _error(401, "GatedRepo")
        if repo_id not in self.repos:
            return _error(404, "RepoNotFound")
        if (repo_id in self.server_errors or (kind == "resolve" and (repo_id, path) in self.server_errors)) \
                and self._take_error():
            headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
            return _error(self.error_status, None, "fake server error", headers)
        sha, files = fake_sha(repo_id), self.repos[repo_id]
        if revision not in ("main", sha):
            return _error(404, "RevisionNotFound")
        if kind == "info":
            siblings = [{"rfilename": name} for name in files]
            return _json({"id": repo_id, "modelId": repo_id, "sha": sha, "private": False, "gated": False,
                          "siblings": siblings})
        if kind == "tree":
            return _json(self._tree(files, path, parse_qs(url.query).get("recursive") == ["true"]))
        if path not in files:
            # The real Hub names the commit on a missing entry; the client caches the miss under it.
            return _error(404, "EntryNotFound", headers={"X-Repo-Commit": sha})
        f = files[path]
        if f.lfs:
            return 302, {"Location": f"{self.cdn_url}/lfs/{f.sha256}", "X-Repo-Commit": sha,
                         "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(len(f.data)), "ETag": f'"{f.oid}"'}, b""
        return 200, {"ETag": f'"{f.oid}"', "X-Repo-Commit": sha}, f.data

    def _take_error(self) -> bool:
        with self._lock:
            if self.errors_left is None:
                return True
            if self.errors_left <= 0:
                return False
            self.errors_left -= 1
            return True

    @staticmethod
    def _tree(files: dict[str, _File], under: str, recursive: bool) -> list[dict]:
        dirs = {Path(name).parents[i].as_posix() for name in files for i in range(name.count("/"))}
        entries = [{"type": "directory", "oid": _git_blob_id(d.encode()), "size": 0, "path": d} for d in sorted(dirs)]
        for name, f in files.items():
            entry = {"type": "file", "oid": f.oid, "size": len(f.data), "path": name}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
            entries.append(entry)
        prefix = f"{under}/" if under else ""
        return [e for e in entries
                if e["path"].startswith(prefix) and (recursive or "/" not in e["path"][len(prefix):])]


def _json(payload) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def _error(status: int, code: str | None, message: str | None = None, headers: dict | None = None):
    message = message or f"fake hub: {code}"
    headers = {**(headers or {}), "Content-Type": "application/json", "X-Error-Message": message}
    if code is not None:
        headers["X-Error-Code"] = code
    return status, headers, json.dumps({"error": message}).encode()


def _handler_class(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, send_body: bool) -> None:
            status, headers, body = hub.answer(self.command, self.path)
            self.send_response(status)
            # A HEAD answer carries the size of the body a GET would get: the client reads the file size from it.
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(send_body=True)

        def do_HEAD(self) -> None:
            self._reply(send_body=False)

        def log_message(self, *args) -> None:
            pass  # keep pytest output clean

    return Handler
