"""A small in-memory Hugging Face Hub on 127.0.0.1 for `resetkit publish` tests (real sockets).

It implements only the part of the Hub HTTP API that huggingface_hub 2.4.0 uses to publish a
folder of small files (``whoami``, ``create_repo``, ``create_branch``, ``upload_folder`` with
``delete_patterns``, ``create_tag``), read from huggingface_hub's ``hf_api.py``,
``_commit_api.py`` and ``_upload_pipeline.py``::

    GET  /api/agent-harnesses                      an empty registry (the one call without a token)
    GET  /api/whoami-v2                            the user the token belongs to
    POST /api/repos/create                         create a repo (409 if it exists)
    POST /api/validate-yaml                        README.md metadata check (always accepted)
    GET  /api/{type}s/{org}/{name}/tree/{rev}      files and folders at a revision (one page)
    GET  /api/{type}s/{org}/{name}/revision/{rev}  repo info: the commit sha of a revision
    POST /api/{type}s/{org}/{name}/preupload/{rev} upload mode of each file: always "regular",
                                                   so contents go inline in the commit (no LFS/Xet)
    POST /api/{type}s/{org}/{name}/commit/{rev}    NDJSON commit: header, then "file" (base64)
                                                   and "deletedFile" lines
    POST /api/{type}s/{org}/{name}/branch/{name}   create a branch (409 if it exists)
    POST /api/{type}s/{org}/{name}/tag/{rev}       tag a revision (409 if the tag exists)

Anything else is answered 404 (and 400 for commit lines it does not know, such as ``lfsFile``),
so that a change in what the client sends shows up as a failing test, not as a silent pass.
Every call but agent-harnesses needs ``Authorization: Bearer <token>`` (401 otherwise)::

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
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from tests.helpers.http import send

_REPO_ROUTE = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/"
                         r"(?P<route>tree|revision|preupload|commit|branch|tag)/(?P<rev>[^/]+)$")
_REFS_ROUTE = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)/refs$")
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"   # what a new Hub repo starts with


def git_blob_oid(content: bytes) -> str:
    """The git sha1 of a file, as the Hub reports it (and huggingface_hub compares it with)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


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
    commits: dict = dataclasses.field(default_factory=dict)    # oid -> {path: bytes} (the whole tree)
    branches: dict = dataclasses.field(default_factory=dict)   # name -> oid
    tags: dict = dataclasses.field(default_factory=dict)       # name -> oid

    def resolve(self, rev: str) -> str | None:
        """A branch, a tag or a full commit oid -> the commit oid (None if unknown)."""
        return self.branches.get(rev) or self.tags.get(rev) or (rev if rev in self.commits else None)

    def new_commit(self, parent: str | None, files: dict, summary: str) -> str:
        tree = "".join(f"{p}:{git_blob_oid(c)}\n" for p, c in sorted(files.items()))
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

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

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
        if req.authorization != f"Bearer {self.token}":
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
        match = _REPO_ROUTE.match(req.path)
        if match is None:
            raise HubError(404, f"fake hub: no route {req.method} {req.path}")
        kind, route, rev = match["kind"], match["route"], unquote(match["rev"])
        key = f"{kind}/{match['repo']}"
        repo = self.repos.get(key)
        if repo is None:
            raise HubError(404, f"Repository not found: {key}", "RepoNotFound")
        handlers = {
            ("GET", "tree"): lambda: self._tree(repo, rev, req.query),
            ("GET", "revision"): lambda: {"id": match["repo"], "sha": self._resolve(repo, rev), "private": False},
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

    def _tree(self, repo: Repo, rev: str, query: dict):
        files = repo.commits[self._resolve(repo, rev)]
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries = {}
        for path, content in files.items():
            parts = path.split("/")
            for depth in range(1, len(parts)):   # the folders above the file
                folder = "/".join(parts[:depth])
                entries[folder] = {"type": "directory", "path": folder, "size": 0,
                                   "oid": hashlib.sha1(folder.encode()).hexdigest()}
            entries[path] = {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}
        return [entry for path, entry in sorted(entries.items()) if recursive or "/" not in path]

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
