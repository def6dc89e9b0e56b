"""``resetkit publish``: upload a dataset version directory to the Hugging Face Hub, unchanged.

A version directory is already a Hub dataset repository (README.md with ``configs:``,
``data/``, ``manifest.json``), so publishing is: check the card, create the repository if
needed, upload the directory in one commit (replacing the ``data/`` files of an earlier
version), and tag that commit with ``<name>-<version>``.

The token comes only from ``HF_TOKEN`` or the Hub login (``hf auth login``), through
huggingface_hub itself; resetkit never reads it into a message, manifest, card or log, and
writes nothing locally.  Every failure (offline, no token, token rejected, no rights, Hub
unreachable) is one clear error raised before or instead of the upload.
"""

from __future__ import annotations

import fnmatch
import click

from .cli_options import store_option
from .errors import ResetkitError
from .store import DatasetVersion, Store

REPO_TYPE = "dataset"


def upload_plan(version: DatasetVersion) -> list[tuple[str, int]]:
    """(path in repo, size) of every file the upload sends: the version directory as it is."""
    root = version.path
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    return [(str(p.relative_to(root)), p.stat().st_size) for p in files]


def validate_card(version: DatasetVersion):
    """Parse README.md with ``huggingface_hub.DatasetCard`` and check what the Hub needs from it:
    a YAML header, a license, and ``configs`` whose ``data_files`` match files of the version.
    Returns the card; raises ResetkitError naming the file and the problem."""
    from huggingface_hub import DatasetCard

    path = version.path / "README.md"
    if not path.is_file():
        raise ResetkitError(f"{path}: missing (run `resetkit card {version.ref}`)")
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ResetkitError(f"{path}: the card has no YAML header (---) for the Hub")
    try:
        card = DatasetCard(text)
    except Exception as exc:  # ValueError from a broken header, yaml errors
        raise ResetkitError(f"{path}: invalid card metadata: {exc}") from None
    data = card.data.to_dict()
    if not data.get("license"):
        raise ResetkitError(f"{path}: card metadata has no 'license'")
    configs = data.get("configs")
    if not isinstance(configs, list) or not configs:
        raise ResetkitError(f"{path}: card metadata has no 'configs' (the Hub would not find the data files)")
    present = [p for p, _ in upload_plan(version)]
    for config in configs:
        if not isinstance(config, dict) or "config_name" not in config:
            raise ResetkitError(f"{path}: each entry of 'configs' needs a config_name, got {config!r}")
        entries = config.get("data_files") or []
        if isinstance(entries, str):
            entries = [{"split": "train", "path": entries}]
        if not entries:
            raise ResetkitError(f"{path}: config {config['config_name']!r} lists no data_files")
        for entry in entries:
            patterns = entry.get("path") if isinstance(entry, dict) else entry
            for pattern in [patterns] if isinstance(patterns, str) else list(patterns or []):
                if not any(fnmatch.fnmatch(p, pattern) for p in present):
                    raise ResetkitError(f"{path}: config {config['config_name']!r}: data_files pattern "
                                        f"{pattern!r} matches no file of {version.ref}")
    return card


def _hub_error(exc: Exception, what: str, repo: str) -> ResetkitError:
    """A one-line error for a failed Hub call (never includes the token)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(exc, OfflineModeIsEnabled):
        return ResetkitError("the Hub is offline (HF_HUB_OFFLINE is set): unset it to publish")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return ResetkitError(f"{what}: the Hugging Face token was rejected (401 Unauthorized); "
                             "set a valid HF_TOKEN or run `hf auth login`")
    if status == 403:
        return ResetkitError(f"{what}: no rights to write to {REPO_TYPE} repository {repo!r} (403 Forbidden); "
                             "use a token with write access to that namespace")
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return ResetkitError(f"{what}: repository {repo!r} not found or not visible with this token (404)")
    if isinstance(exc, HfHubHTTPError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ResetkitError(f"{what}: the Hub answered {status}: {first}")
    detail = " ".join(str(exc).split()) or "no details"
    if _is_transport_error(exc):
        return ResetkitError(f"{what}: cannot reach the Hub at {constants.ENDPOINT} "
                             f"({type(exc).__name__}: {detail})")
    # anything else is the Hub (or huggingface_hub on its behalf) refusing the request: keep
    # the whole message, whose later lines usually hold the reason
    return ResetkitError(f"{what}: the Hub refused it ({type(exc).__name__}: {detail})")


def _is_transport_error(exc: Exception) -> bool:
    """Connection refused, DNS, TLS, timeouts: the Hub was not reached.  huggingface_hub talks
    through httpx (``httpx2`` in 2.x), whose such errors all derive from a class named
    ``TransportError``; requests' (older huggingface_hub) are OSErrors."""
    return (isinstance(exc, (OSError, TimeoutError))
            or any(cls.__name__ == "TransportError" for cls in type(exc).__mro__))


def publish(store: Store, ref: str, repo: str, *, private: bool = False, revision: str | None = None,
            dry_run: bool = False, echo=click.echo) -> dict:
    """Upload ``ref``'s version directory to ``repo`` (``ORG/NAME``); returns what was (or would
    be) done: repo, revision, tag, files, and the commit url when uploaded."""
    from huggingface_hub import constants

    version = store.resolve(ref)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ResetkitError(f"--repo must be ORG/NAME, got {repo!r}")
    validate_card(version)
    files = upload_plan(version)
    tag = f"{version.name}-{version.version}"
    plan = {"dataset": version.ref, "repo": repo, "revision": revision or "main", "tag": tag,
            "private": private, "files": files}
    if dry_run:
        echo(f"dry run: would upload {version.ref} ({version.path}) to {REPO_TYPE} repo {repo} "
             f"@ {plan['revision']} in one commit, tagged {tag!r}"
             + (" (private repo)" if private else ""))
        for path, size in files:
            echo(f"  {path}  ({size:,} bytes)")
        echo(f"{len(files)} files, {sum(s for _, s in files):,} bytes")
        return plan

    if constants.HF_HUB_OFFLINE:
        raise ResetkitError("the Hub is offline (HF_HUB_OFFLINE is set): unset it to publish, "
                            "or use --dry-run to see what would be uploaded")
    from huggingface_hub import HfApi, get_token

    if not get_token():
        raise ResetkitError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (the token is "
                            "read from there only and never written by resetkit)")
    api = HfApi()
    try:
        user = api.whoami()
    except Exception as exc:
        raise _hub_error(exc, "checking the token", repo) from None
    try:
        # private=None keeps an organisation's default visibility; --private forces it
        repo_url = api.create_repo(repo, repo_type=REPO_TYPE, private=True if private else None, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
        commit = api.create_commit(
            repo, operations=_operations(api, version, files, repo, revision), repo_type=REPO_TYPE,
            revision=revision, commit_message=f"resetkit publish {version.ref}",
            commit_description=f"Dataset version {version.ref} uploaded unchanged by resetkit.")
    except Exception as exc:
        raise _hub_error(exc, f"publishing {version.ref}", repo) from None
    try:
        tagged = _tag(api, repo, tag, commit.oid, version)
    except Exception as exc:
        # the data landed; say so, so that a rerun is not mistaken for a failed upload
        err = _hub_error(exc, f"tagging {tag}", repo)
        raise ResetkitError(f"uploaded {version.ref} as commit {commit.oid}, but the tag failed: "
                            f"{err.message}. Rerun to add the tag (the upload is unchanged).") from None
    plan["commit"] = getattr(commit, "commit_url", None) or str(commit)
    plan["tag_commit"] = tagged
    url = str(repo_url) if repo_url else f"{constants.ENDPOINT}/datasets/{repo}"
    echo(f"published {version.ref} to {url} as {user.get('name', '?')} "
         f"(revision {plan['revision']}, tag {tag}): {plan['commit']}")
    if tagged != commit.oid:
        echo(f"note: tag {tag} already marks commit {tagged}, an earlier upload of this version; "
             "it was left there")
    return plan


def _operations(api, version: DatasetVersion, files, repo: str, revision: str | None) -> list:
    """One commit: every file of the version directory, and the deletion of the repo's other
    data/ files (an earlier version's shards).  ``create_commit`` drops the files the Hub
    already has unchanged, and makes no commit at all when nothing changed."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    paths = {p for p, _ in files}
    existing = api.list_repo_files(repo, repo_type=REPO_TYPE, revision=revision)
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(version.path / p)) for p in sorted(paths)]
    ops += [CommitOperationDelete(path_in_repo=p) for p in sorted(existing)
            if p.startswith("data/") and p not in paths]
    return ops


def _tag(api, repo: str, tag: str, oid: str, version: DatasetVersion) -> str:
    """Tag ``oid`` unless the tag exists; the commit the tag marks (an earlier upload of the
    same immutable version keeps its tag: tags are never moved)."""
    for ref in api.list_repo_refs(repo, repo_type=REPO_TYPE).tags:
        if ref.name == tag:
            return ref.target_commit
    api.create_tag(repo, tag=tag, revision=oid, repo_type=REPO_TYPE, tag_message=f"resetkit {version.ref}")
    return oid


@click.command("publish")
@click.argument("dataset")
@click.option("--repo", required=True, metavar="ORG/NAME", help="Hub dataset repository to upload to.")
@click.option("--private", is_flag=True, help="Create the repository as private (if it does not exist).")
@click.option("--revision", default=None, metavar="BRANCH", help="Branch to commit to (created if needed).")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded; no network, no token needed.")
@store_option
def publish_command(dataset, repo, private, revision, dry_run, store_dir):
    """Upload a dataset version (DATASET[@VERSION]) to the Hugging Face Hub, unchanged.

    One commit with the version directory (card, data/, manifest.json) and a tag
    NAME-VERSION.  The token comes from HF_TOKEN or `hf auth login`, never from a file of
    resetkit; the card is validated first.

    \b
    Examples:
      resetkit publish selection --repo my-org/reset-selection --dry-run
      resetkit publish selection@3fa2c1 --repo my-org/reset-selection --private
      resetkit publish if-train --repo my-org/if-train --revision experiments
    """
    publish(Store(store_dir), dataset, repo, private=private, revision=revision, dry_run=dry_run)
