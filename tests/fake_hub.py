"""A small Hugging Face Hub over real HTTP on 127.0.0.1, for tests.

It implements the endpoints ``huggingface_hub`` 2.x calls to create a dataset repo,
commit files (regular files inline, parquet/PNG through the LFS batch API and a basic
PUT transfer), tag a revision and read refs, paths-info and the tree back; it records
every request so tests can see what the real client sent. It is a test double at the
network edge: the client code under test is the real one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

LFS_SUFFIXES = (".parquet", ".png")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Blob:
    data: bytes
    lfs: bool

    def info(self, path: str) -> dict[str, Any]:
        sha = hashlib.sha256(self.data).hexdigest()
        entry: dict[str, Any] = {
            "type": "file",
            "path": path,
            "size": len(self.data),
            "oid": git_blob_id(self.data),
        }
        if self.lfs:
            entry["lfs"] = {"oid": sha, "size": len(self.data), "pointerSize": 134}
        return entry


@dataclass
class Commit:
    oid: str
    message: str
    description: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        oid = self.branches.get(rev) or self.tags.get(rev) or rev
        return self.commits.get(oid)


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None


class FakeHub:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- state changes -----------------------------------------------------------------
    def create_repo(self, repo_id: str, private: bool) -> bool:
        if repo_id in self.repos:
            return False
        repo = Repo(repo_id, private)
        self.repos[repo_id] = repo
        self.commit(
            repo, "main", "initial commit", "", [("file", ".gitattributes", b"*.parquet filter=lfs\n")]
        )
        return True

    def commit(self, repo: Repo, branch: str, message: str, description: str, ops: list[tuple]) -> Commit:
        parent = repo.resolve(branch)
        files = dict(parent.files) if parent else {}
        for kind, path, payload in ops:
            if kind == "file":
                files[path] = Blob(payload, lfs=False)
            elif kind == "lfsFile":
                files[path] = Blob(self.lfs[payload], lfs=True)
            elif kind == "deletedFile":
                files.pop(path)
        digest = hashlib.sha1(f"{parent.oid if parent else ''}{message}{len(repo.commits)}".encode())
        commit = Commit(digest.hexdigest(), message, description, files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/refs$"), "refs"),
    ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$"), "lfs_batch"),
    ("PUT", re.compile(r"^/_lfs/(?P<oid>[0-9a-f]{64})$"), "lfs_put"),
    ("POST", re.compile(r"^/_lfs/(?P<oid>[0-9a-f]{64})/verify$"), "lfs_verify"),
    ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/tag/(?P<rev>[^/]+)$"), "tag"),
    ("POST", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)$"), "paths_info"),
    ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)$"), "tree"),
    ("GET", re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$"), "revision"),
]
# Endpoints that change state or reveal a repo need the token; the LFS transfer URLs
# are pre-signed on the real Hub, so they don't.
OPEN = {"lfs_put", "lfs_verify"}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        # ---- plumbing ------------------------------------------------------------------
        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            self.query = parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization")
            with hub.lock:
                hub.requests.append(Request(method, path, auth))
                for verb, pattern, name in ROUTES:
                    match = pattern.match(path)
                    if verb == method and match:
                        if name not in OPEN and auth != f"Bearer {hub.token}":
                            return self._send(401, {"error": "Invalid credentials in Authorization header"})
                        return getattr(self, name)(**match.groupdict())
            self._send(404, {"error": f"no route {method} {path}"})

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _repo(self, repo: str) -> Repo | None:
            found = hub.repos.get(repo)
            if found is None:
                self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return found

        def _commit_at(self, repo: Repo, rev: str) -> Commit | None:
            commit = repo.resolve(unquote(rev))
            if commit is None:
                self._send(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
            return commit

        # ---- endpoints -----------------------------------------------------------------
        def validate_yaml(self) -> None:
            content = json.loads(self.body)["content"]
            if not content.startswith("---\n"):
                return self._send(400, {"errors": [{"message": "README.md has no YAML metadata"}]})
            self._send(200, {"errors": [], "warnings": []})

        def create_repo(self) -> None:
            payload = json.loads(self.body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if payload.get("type") != "dataset":
                return self._send(400, {"error": "this fake Hub holds dataset repos only"})
            url = f"{hub.url}/datasets/{repo_id}"
            if not hub.create_repo(repo_id, payload.get("visibility") == "private"):
                return self._send(409, {"error": "You already created this dataset repo", "url": url})
            self._send(200, {"url": url})

        def refs(self, repo: str) -> None:
            if (found := self._repo(repo)) is None:
                return

            def ref(name: str, oid: str, kind: str) -> dict[str, str]:
                return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

            self._send(
                200,
                {
                    "branches": [ref(n, o, "heads") for n, o in found.branches.items()],
                    "converts": [],
                    "tags": [ref(n, o, "tags") for n, o in found.tags.items()],
                },
            )

        def preupload(self, repo: str, rev: str) -> None:
            if (found := self._repo(repo)) is None or (commit := self._commit_at(found, rev)) is None:
                return
            files = []
            for f in json.loads(self.body)["files"]:
                lfs = f["path"].endswith(LFS_SUFFIXES)
                existing = commit.files.get(f["path"])
                oid = None
                if existing is not None:
                    oid = hashlib.sha256(existing.data).hexdigest() if lfs else git_blob_id(existing.data)
                files.append(
                    {
                        "path": f["path"],
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
            self._send(200, {"files": files})

        def lfs_batch(self, repo: str) -> None:
            if self._repo(repo) is None:
                return
            objects = []
            for obj in json.loads(self.body)["objects"]:
                entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in hub.lfs:
                    entry["actions"] = {
                        "upload": {"href": f"{hub.url}/_lfs/{obj['oid']}"},
                        "verify": {"href": f"{hub.url}/_lfs/{obj['oid']}/verify"},
                    }
                objects.append(entry)
            self._send(200, {"transfer": "basic", "objects": objects})

        def lfs_put(self, oid: str) -> None:
            if hashlib.sha256(self.body).hexdigest() != oid:
                return self._send(400, {"error": "sha256 mismatch"})
            hub.lfs[oid] = self.body
            self._send(200, {})

        def lfs_verify(self, oid: str) -> None:
            self._send(200 if oid in hub.lfs else 404, {})

        def commit(self, repo: str, rev: str) -> None:
            if (found := self._repo(repo)) is None:
                return
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            ops = []
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "file":
                    ops.append(("file", value["path"], base64.b64decode(value["content"])))
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        return self._send(400, {"error": f"LFS object {value['oid']} was never uploaded"})
                    ops.append(("lfsFile", value["path"], value["oid"]))
                elif key == "deletedFile":
                    ops.append(("deletedFile", value["path"], None))
            commit = hub.commit(found, unquote(rev), header["summary"], header.get("description", ""), ops)
            self._send(
                200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{commit.oid}", "commitOid": commit.oid}
            )

        def tag(self, repo: str, rev: str) -> None:
            if (found := self._repo(repo)) is None or (commit := self._commit_at(found, rev)) is None:
                return
            name = json.loads(self.body)["tag"]
            if name in found.tags:
                return self._send(409, {"error": f"tag {name} already exists"})
            found.tags[name] = commit.oid
            self._send(200, {})

        def paths_info(self, repo: str, rev: str) -> None:
            if (found := self._repo(repo)) is None or (commit := self._commit_at(found, rev)) is None:
                return
            paths = parse_qs(self.body.decode()).get("paths", [])
            self._send(200, [commit.files[p].info(p) for p in paths if p in commit.files])

        def tree(self, repo: str, rev: str) -> None:
            if (found := self._repo(repo)) is None or (commit := self._commit_at(found, rev)) is None:
                return
            self._send(200, [blob.info(path) for path, blob in sorted(commit.files.items())])

        def revision(self, repo: str, rev: str) -> None:
            if (found := self._repo(repo)) is None or (commit := self._commit_at(found, rev)) is None:
                return
            siblings = [{"rfilename": path} for path in sorted(commit.files)]
            self._send(200, {"id": repo, "sha": commit.oid, "private": found.private, "siblings": siblings})

    return Handler
