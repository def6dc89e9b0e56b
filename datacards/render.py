"""Render a dataset card (README.md) from a manifest.

The YAML header is what the Hub reads: ``configs`` (one ``default`` config whose
``data_files`` map each split to its shards), license, task categories, size category,
source datasets and a pretty name.  Stages add header fields (``meta``) and body
sections (``sections``) of their own; the manifest supplies the rest.
"""

from __future__ import annotations

from pathlib import Path

import yaml

TEMPLATES = Path(__file__).parent / "templates"


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "100M<n<1B"


def card_header(manifest: dict, meta: dict | None = None) -> dict:
    meta = dict(meta or {})
    total = sum(s["rows"] for s in manifest.get("splits", {}).values())
    header = {
        "pretty_name": meta.pop("pretty_name", f"resetkit {manifest['name']}"),
        "language": meta.pop("language", ["en"]),
        "license": meta.pop("license", "other"),
        "size_categories": [size_category(total)],
        "task_categories": meta.pop("task_categories", ["text-generation"]),
        "tags": sorted(set(["resetkit", "reset", manifest["builder"]] + meta.pop("tags", []))),
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": split, "path": f"data/{split}-*.parquet"}
                           for split in manifest.get("splits", {})],
        }],
    }
    header.update(meta)
    return header


def _fp_summary(fp) -> str:
    if not isinstance(fp, dict):
        return f"`{fp}`"
    if "repo" in fp:
        return f"Hub `{fp['repo']}` revision `{fp.get('revision') or 'main'}`"
    if fp.get("kind") == "dir":
        return f"local folder `{fp.get('path')}` ({len(fp.get('files', []))} files)"
    if "sha256" in fp:
        return f"local file `{fp.get('path')}` ({fp.get('size', 0):,} bytes, sha256 `{fp['sha256'][:16]}…`)"
    return ", ".join(f"{k}=`{v}`" for k, v in fp.items())


def render_card(manifest: dict, meta: dict | None = None, sections: dict | None = None,
                description: str | None = None, load_path: str | None = None) -> str:
    import jinja2

    meta = dict(meta or {})
    description = description or meta.pop("description", None) or (
        f"The `{manifest['name']}` dataset of a RESET pipeline.")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             trim_blocks=False, lstrip_blocks=False)
    header = card_header(manifest, meta)
    text = env.get_template("dataset.md.j2").render(
        header=yaml.safe_dump(header, sort_keys=False, allow_unicode=True),
        pretty_name=header["pretty_name"],
        description=description,
        m=manifest,
        sections=sections or {},
        fp_summary=_fp_summary,
        config_yaml=yaml.safe_dump(manifest.get("config", {}), sort_keys=True, allow_unicode=True),
        load_path=load_path or f"store/{manifest['name']}/{manifest['version']}",
    )
    return text


def rerender(version_dir: str | Path, meta: dict | None = None, sections: dict | None = None) -> str:
    """Render the card of an existing version directory again from its manifest.

    Header fields and sections a stage stored in the manifest under ``card`` are reused.
    """
    import json

    version_dir = Path(version_dir)
    manifest = json.loads((version_dir / "manifest.json").read_text(encoding="utf-8"))
    stored = manifest.get("card", {})
    return render_card(manifest, meta={**stored.get("meta", {}), **(meta or {})},
                       sections={**stored.get("sections", {}), **(sections or {})})
