"""A small Hugging Face Hub on 127.0.0.1 for `resetkit publish` and `resetkit build` tests
(real sockets, the real huggingface_hub client).

It implements only the part of the Hub HTTP API that huggingface_hub 2.4.0 uses to publish a
folder of small files (``whoami``, ``create_repo``, ``create_branch``, ``upload_folder`` with
``delete_patterns``, ``create_tag``), read from huggingface_hub's ``hf_api.py``,
``_commit_api.py`` and ``_upload_pipeline.py``, and to download dataset files
(``dataset_info``, ``list_repo_tree``, ``hf_hub_download``, ``snapshot_download``, read from
``file_download.py`` and ``_snapshot_download.py``)::

    GET  /api/agent-harnesses                      an empty registry (the one call without a token)
    GET  /api/whoami-v2                            the user the token belongs to
    POST /api/repos/create                         create a repo (409 if it exists)
    POST /api/validate-yaml                        README.md metadata check (always accepted)
    GET  /api/{type}s/{org}/{name}/tree/{rev}      files and folders at a revision (one page)
    GET  /api/{type}s/{org}/{name}                 repo info of main (as revision/main below)
    GET  /api/{type}s/{org}/{name}/revision/{rev}  repo info: the commit sha of a revision and
                                                   its files ("siblings")
    POST /api/{type}s/{org}/{name}/paths-info/{rev} files and folders at given paths
    HEAD/GET /{type}s/{org}/{name}/resolve/{rev}/{path}  a file: its bytes (GET), with the
                                                   headers hf_hub_download reads (X-Repo-Commit,
                                                   ETag, Content-Length; X-Linked-Etag and
                                                   X-Linked-Size for LFS-tracked files)
    POST /api/{type}s/{org}/{name}/preupload/{rev} upload mode of each file: always "regular",
                                                   so contents go inline in the commit (no LFS/Xet)
    POST /api/{type}s/{org}/{name}/commit/{rev}    NDJSON commit: header, then "file" (base64)
                                                   and "deletedFile" lines
    POST /api/{type}s/{org}/{name}/branch/{name}   create a branch (409 if it exists)
    POST /api/{type}s/{org}/{name}/tag/{rev}       tag a revision (409 if the tag exists)

Anything else is answered 404 (and 400 for commit lines it does not know, such as ``lfsFile``),
so that a change in what the client sends shows up as a failing test, not as a silent pass.
Every call but agent-harnesses needs ``Authorization: Bearer <token>`` (401 otherwise), except
reads (revision, tree, paths-info, resolve) of a public repo made with ``add_dataset``, which
work without a token, as on the Hub.  ``add_dataset`` lays a dataset repo out as the real
ones are (see ``tests/builders/test_hub_build.py``); a file can be bytes or a local Path
(served from disk, for benchmark-size files)::

    hub.add_dataset("microsoft/ms_marco", {"README.md": card, "v2.1/train-00000-of-00007.parquet": path})

    with FakeHub(token="hf_x") as hub:                 # hub.endpoint is the HF_ENDPOINT to use
        hub.fail["tag"] = (500, "tags are down")       # make one route fail: whoami, create,
                                                       # validate-yaml, tree, revision,
                                                       # preupload, commit, branch, refs or tag
        ...
        hub.requests    # every request: method, path, query, headers, body, status
        hub.commits     # every commit received: repo, revision, oid, header, files, deleted
        hub.repos["datasets/me/x"].tags                # the state: commits, branches, tags
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from tests.helpers.http import send

_REPO_ROUTE = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/"
                         r"(?P<route>tree|revision|preupload|commit|branch|tag|paths-info)/(?P<rev>[^/]+)"
                         r"(?:/(?P<path>.*))?$")
_RESOLVE_ROUTE = re.compile(r"^/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
LFS_SUFFIXES = (".parquet", ".gz", ".bz2", ".xz", ".zst", ".arrow")   # what .gitattributes sends to LFS
_INFO_ROUTE = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)$")   # info of main
_REFS_ROUTE = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/refs$")
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"   # what a new Hub repo starts with


def git_blob_oid(content: bytes) -> str:
    """The git sha1 of a file, as the Hub reports it (and huggingface_hub compares it with)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


_DIGESTS: dict = {}


def file_digests(content) -> tuple[int, str, str]:
    """(size, git blob oid, sha256) of bytes or of a file on disk (streamed, cached)."""
    if isinstance(content, bytes):
        return len(content), git_blob_oid(content), hashlib.sha256(content).hexdigest()
    key = (str(content), content.stat().st_mtime_ns)
    if key not in _DIGESTS:
        size = content.stat().st_size
        sha1, sha256 = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
        with open(content, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha1.update(block)
                sha256.update(block)
        _DIGESTS[key] = (size, sha1.hexdigest(), sha256.hexdigest())
    return _DIGESTS[key]


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    status: int | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclasses.dataclass
class Repo:
    commits: dict = dataclasses.field(default_factory=dict)    # oid -> {path: bytes | Path} (the whole tree)
    branches: dict = dataclasses.field(default_factory=dict)   # name -> oid
    tags: dict = dataclasses.field(default_factory=dict)       # name -> oid
    public: bool = False                                       # readable without a token

    def resolve(self, rev: str) -> str | None:
        """A branch, a tag or a full commit oid -> the commit oid (None if unknown)."""
        return self.branches.get(rev) or self.tags.get(rev) or (rev if rev in self.commits else None)

    def new_commit(self, parent: str | None, files: dict, summary: str) -> str:
        tree = "".join(f"{p}:{file_digests(c)[1]}\n" for p, c in sorted(files.items()))
        oid = hashlib.sha1(f"{parent}\n{summary}\n{tree}".encode()).hexdigest()
        self.commits[oid] = files
        return oid


class HubError(Exception):
    """An error answer: status, {"error": message, **extra}, and the X-Error-Code header if any."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


class FakeHub:
    def __init__(self, token: str, user: str = "tester"):
        self.token, self.user = token, user
        self.repos: dict[str, Repo] = {}          # "datasets/me/x" -> Repo
        self.requests: list[Request] = []
        self.commits: list[dict] = []
        self.fail: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "FakeHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, url.path, parse_qs(url.query),
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"")
                code = None
                if _RESOLVE_ROUTE.match(url.path):
                    return self.send_file(request)
                with hub._lock:
                    hub.requests.append(request)
                    try:
                        status, payload = 200, hub._answer(request)
                    except HubError as exc:
                        status, payload = exc.status, {"error": exc.message, **exc.extra}
                        code = exc.code
                    except Exception as exc:  # a request the fake cannot parse: say so to the client
                        status, payload = 500, {"error": f"fake hub: {exc!r}"}
                    request.status = status
                # X-Error-Code: how the Hub names its 404s (RepoNotFound...)
                send(self, status, payload, {"X-Error-Code": code} if code else None)

            def send_file(self, request):
                """A resolve request: headers (and, for GET, the bytes, streamed from disk
                when the file is a Path) outside the lock, so big downloads run in parallel."""
                with hub._lock:
                    hub.requests.append(request)
                    try:
                        status, headers, content = 200, *hub._resolve_file(request)
                    except HubError as exc:
                        status, headers, content = exc.status, {"X-Error-Code": exc.code or ""}, None
                        headers["X-Error-Message"] = exc.message
                    request.status = status
                if content is None and self.command == "GET":
                    return send(self, status, {"error": headers.get("X-Error-Message", "")}, headers)
                if content is None:  # HEAD: the headers only
                    headers["Content-Length"] = "0"
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if self.command == "GET" and content is not None:
                        if isinstance(content, bytes):
                            self.wfile.write(content)
                        else:
                            with open(content, "rb") as fh:
                                shutil.copyfileobj(fh, self.wfile, 1 << 20)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one

            def log_message(self, *args):  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the API -----------------------------------------------------------------------------
    def _answer(self, req: Request):
        """The JSON answer to one request (called under the lock); raises HubError for an error."""
        if req.method == "GET" and req.path == "/api/agent-harnesses":
            # huggingface_hub's agent-detection registry for its User-Agent, fetched without a
            # token (at most once a day, cached in HF_HOME): an empty registry detects no agent
            return {"standardEnvVars": [], "harnesses": {}}
        if req.authorization != f"Bearer {self.token}" and not self._public_read(req):
            if req.authorization is None and self._missing_repo(req):   # as the Hub answers anonymous reads
                raise HubError(401, "Repository Not Found", "RepoNotFound")
            raise HubError(401, "Invalid credentials in Authorization header")
        if req.method == "GET" and req.path == "/api/whoami-v2":
            return self._route("whoami", lambda: {
                "type": "user", "name": self.user, "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
        if req.method == "POST" and req.path == "/api/repos/create":
            return self._route("create", lambda: self._create_repo(json.loads(req.body)))
        if req.method == "POST" and req.path == "/api/validate-yaml":
            return self._route("validate-yaml", lambda: {"errors": [], "warnings": []})
        refs = _REFS_ROUTE.match(req.path)
        if req.method == "GET" and refs is not None:  # branches and tags, as list_repo_refs reads them
            repo = self.repos.get(f"{refs['kind']}/{refs['repo']}")
            if repo is None:
                raise HubError(404, f"Repository not found: {refs['kind']}/{refs['repo']}", "RepoNotFound")
            return self._route("refs", lambda: {
                "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": o} for b, o in repo.branches.items()],
                "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": o} for t, o in repo.tags.items()],
                "converts": [], "pullRequests": []})
        info = _INFO_ROUTE.match(req.path)
        if req.method == "GET" and info is not None:
            repo = self.repos.get(f"{info['kind']}/{info['repo']}")
            if repo is None:
                raise HubError(404, f"Repository not found: {info['kind']}/{info['repo']}", "RepoNotFound")
            return self._route("revision", lambda: self._info(repo, info["repo"], "main"))
        match = _REPO_ROUTE.match(req.path)
        if match is None:
            raise HubError(404, f"fake hub: no route {req.method} {req.path}")
        kind, route, rev = match["kind"], match["route"], unquote(match["rev"])
        key = f"{kind}/{match['repo']}"
        repo = self.repos.get(key)
        if repo is None:
            raise HubError(404, f"Repository not found: {key}", "RepoNotFound")
        handlers = {
            ("GET", "tree"): lambda: self._tree(repo, rev, req.query, unquote(match["path"] or "")),
            ("GET", "revision"): lambda: self._info(repo, match["repo"], rev),
            ("POST", "paths-info"): lambda: self._paths_info(repo, rev, req),
            ("POST", "preupload"): lambda: self._preupload(repo, rev, json.loads(req.body)),
            ("POST", "commit"): lambda: self._commit(key, repo, rev, req.body),
            ("POST", "branch"): lambda: self._branch(repo, rev, json.loads(req.body or b"{}")),
            ("POST", "tag"): lambda: self._tag(repo, rev, json.loads(req.body)),
        }
        if (req.method, route) not in handlers:
            raise HubError(404, f"fake hub: no route {req.method} {req.path}")
        return self._route(route, handlers[req.method, route])

    def _route(self, name: str, answer):
        if name in self.fail:
            status, message = self.fail[name]
            if name == "validate-yaml":  # the Hub lists the card's problems under "errors"
                raise HubError(status, "Invalid metadata", errors=[{"message": message}])
            raise HubError(status, message)
        return answer()

    @staticmethod
    def _resolve(repo: Repo, rev: str) -> str:
        oid = repo.resolve(rev)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return oid

    def _create_repo(self, body: dict):
        kind = body.get("type") or "model"
        key = f"{kind}s/{body['organization']}/{body['name']}"
        url = f"{self.endpoint}/{'' if kind == 'model' else kind + 's/'}{body['organization']}/{body['name']}"
        if key in self.repos:
            raise HubError(409, f"You already created this {kind} repo", url=url)   # create_repo reads "url"
        repo = self.repos[key] = Repo()
        repo.branches["main"] = repo.new_commit(None, {".gitattributes": GITATTRIBUTES}, "initial commit")
        return {"url": url, "name": f"{body['organization']}/{body['name']}"}

    def _entries(self, files: dict) -> dict:
        """Every file and folder of a tree as the Hub lists them (LFS files with their sha256)."""
        entries = {}
        for path, content in files.items():
            parts = path.split("/")
            for depth in range(1, len(parts)):   # the folders above the file
                folder = "/".join(parts[:depth])
                entries[folder] = {"type": "directory", "path": folder, "size": 0,
                                   "oid": hashlib.sha1(folder.encode()).hexdigest()}
            size, oid, sha256 = file_digests(content)
            entries[path] = {"type": "file", "path": path, "size": size, "oid": oid}
            if path.endswith(LFS_SUFFIXES):
                entries[path]["lfs"] = {"oid": sha256, "size": size, "pointerSize": 134}
        return entries

    def _tree(self, repo: Repo, rev: str, query: dict, under: str = ""):
        files = repo.commits[self._resolve(repo, rev)]
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{under.strip('/')}/" if under.strip("/") else ""
        out = []
        for path, entry in sorted(self._entries(files).items()):
            if not path.startswith(prefix):
                continue
            if recursive or "/" not in path[len(prefix):]:
                out.append(entry)
        if prefix and not out:
            raise HubError(404, f"Entry not found: {under}", "EntryNotFound")
        return out

    def _info(self, repo: Repo, name: str, rev: str):
        oid = self._resolve(repo, rev)
        return {"id": name, "sha": oid, "private": not repo.public,
                "siblings": [{"rfilename": p} for p in sorted(repo.commits[oid])]}

    def _paths_info(self, repo: Repo, rev: str, req: Request):
        form = parse_qs(req.body.decode("utf-8")) if req.body else {}
        entries = self._entries(repo.commits[self._resolve(repo, rev)])
        return [entries[p] for p in form.get("paths", []) if p in entries]

    def _public_read(self, req: Request) -> bool:
        """An anonymous read of a public repo (no Authorization header at all)."""
        if req.authorization is not None or req.method not in ("GET", "HEAD", "POST"):
            return False
        match = _REPO_ROUTE.match(req.path) or _RESOLVE_ROUTE.match(req.path) or _INFO_ROUTE.match(req.path)
        if match is None or (req.method == "POST" and match.groupdict().get("route") != "paths-info"):
            return False
        if "route" in match.groupdict() and match["route"] not in ("tree", "revision", "paths-info"):
            return False
        repo = self.repos.get(f"{match['kind'] or 'models'}/{match['repo']}")
        return repo is not None and repo.public

    def _missing_repo(self, req: Request) -> bool:
        """A repo an anonymous client may not see: missing or private (the Hub does not tell which)."""
        match = _REPO_ROUTE.match(req.path) or _RESOLVE_ROUTE.match(req.path) or _INFO_ROUTE.match(req.path)
        repo = self.repos.get(f"{match['kind'] or 'models'}/{match['repo']}") if match else None
        return match is not None and (repo is None or not repo.public)

    def _resolve_file(self, req: Request) -> tuple[dict, bytes | Path]:
        """(headers, content) of a resolve request; raises HubError (RepoNotFound,
        RevisionNotFound, EntryNotFound) as the Hub answers them."""
        match = _RESOLVE_ROUTE.match(req.path)
        if req.authorization != f"Bearer {self.token}" and not self._public_read(req):
            if req.authorization is None and self._missing_repo(req):
                raise HubError(401, "Repository Not Found", "RepoNotFound")
            raise HubError(401, "Invalid credentials in Authorization header")
        key = f"{match['kind'] or 'models'}/{match['repo']}"
        repo = self.repos.get(key)
        if repo is None:
            raise HubError(404, f"Repository not found: {key}", "RepoNotFound")
        if "resolve" in self.fail:
            raise HubError(*self.fail["resolve"])
        oid = self._resolve(repo, unquote(match["rev"]))
        path = unquote(match["path"])
        files = repo.commits[oid]
        if path not in files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        size, blob, sha256 = file_digests(files[path])
        headers = {"Content-Length": str(size), "X-Repo-Commit": oid, "ETag": f'"{blob}"',
                   "Content-Type": "application/octet-stream"}
        if path.endswith(LFS_SUFFIXES):  # LFS files: the etag is the sha256 of the content
            headers.update({"X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(size)})
        return headers, files[path]

    def add_dataset(self, repo_id: str, files: dict, *, public: bool = True, tag: str | None = None) -> str:
        """Make a dataset repo holding ``files`` ({path: bytes | Path}) on main; returns the commit."""
        repo = self.repos[f"datasets/{repo_id}"] = Repo(public=public)
        oid = repo.branches["main"] = repo.new_commit(None, {".gitattributes": GITATTRIBUTES, **files},
                                                      "Upload dataset")
        if tag:
            repo.tags[tag] = oid
        return oid

    def _preupload(self, repo: Repo, rev: str, body: dict):
        files = repo.commits[self._resolve(repo, rev)]
        return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                           "oid": git_blob_oid(files[f["path"]]) if f["path"] in files else None}
                          for f in body["files"]]}

    def _commit(self, key: str, repo: Repo, rev: str, body: bytes):
        if rev not in repo.branches:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "fake hub: the commit must start with a header line")
        parent = repo.branches[rev]
        files, added, deleted = dict(repo.commits[parent]), {}, []
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file" and value.get("encoding") == "base64":
                added[value["path"]] = files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
                deleted.append(value["path"])
            else:
                raise HubError(400, f"fake hub: unsupported commit line {line['key']!r}")
        oid = repo.branches[rev] = repo.new_commit(parent, files, lines[0]["value"]["summary"])
        self.commits.append({"repo": key, "revision": rev, "oid": oid, "parent": parent,
                             "header": lines[0]["value"], "files": added, "deleted": deleted})
        url = f"{self.endpoint}/{key.removeprefix('models/')}/commit/{oid}"   # models have no prefix
        return {"success": True, "commitOid": oid, "commitUrl": url, "hookOutput": ""}

    def _branch(self, repo: Repo, branch: str, body: dict):
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        repo.branches[branch] = self._resolve(repo, body.get("startingPoint") or "main")
        return {}

    def _tag(self, repo: Repo, rev: str, body: dict):
        oid = self._resolve(repo, rev)
        if body["tag"] in repo.tags:
            raise HubError(409, f"Reference already exists: refs/tags/{body['tag']}")
        repo.tags[body["tag"]] = oid
        return {}
