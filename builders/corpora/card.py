"""The data card of a source corpus: header fields and body sections (the drops and the
lineage come from the manifest)."""

from __future__ import annotations

from .. import templates
from .config import PRETTY, BuildConfig, declared_splits, source_set


def describe(w, corpus: str, cfg: BuildConfig, opened: dict, counts: dict, train_ref, notes: dict) -> None:
    """Card header fields and body sections (drops and lineage come from the manifest)."""
    licenses = sorted({o.src.license for o in opened.values()})
    w.card_meta.update({
        "pretty_name": PRETTY[corpus],
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "task_categories": (["text-generation"] if corpus.startswith("if")
                            else ["question-answering", "summarization", "text-generation"]),
        "source_datasets": sorted({(o.fingerprint.get("repo") if "repo" in o.fingerprint
                                    else (o.src.hub_id or o.src.name)).split(":")[0] for o in opened.values()}),
    })
    splits = [s for s in declared_splits(corpus) if any(s in c for c in counts.values())]
    lines = ["| source | input | license | rules | " + " | ".join(splits) + " |",
             "|---|---|---|---|" + "---|" * len(splits)]
    for n, o in opened.items():
        fp = o.fingerprint
        where = f"Hub `{fp['repo']}`" if "repo" in fp else f"local `{fp.get('path')}`"
        lines.append(f"| {o.src.pretty} (`{n}`) | {where} | {o.src.license} | {o.src.rules} | "
                     + " | ".join(f"{counts.get(n, {}).get(s, 0):,}" for s in splits) + " |")
    w.card_sections["Sources"] = "\n".join(lines)
    w.card_sections["Template"] = (f"Prompts use the **{cfg.template}** template "
                                   f"({templates.DESCRIPTIONS[cfg.template]}):\n\n```\n"
                                   f"{templates.skeleton(cfg.template)}\n```")
    how = {
        "if-train": (f"Unique examples across sources (case- and space-normalised instruction + exact "
                     f"response; the first source in the order {', '.join(source_set('if-train'))} wins). A seeded "
                     f"{cfg.dev_fraction:.2%} of train examples (seed {cfg.seed}) is held out as "
                     f"validation, together with OASST-1's own validation split."),
        "if-eval": f"Only instructions unseen in `{train_ref.ref if train_ref else '?'}`; duplicates dropped.",
        "cd-train": (f"QA contexts: at most {cfg.max_passages} passages joined with a newline, at least "
                     f"one mentioning a gold answer (gold beyond them: {cfg.gold_passage})."),
        "cd-eval": ("QA contexts as in cd-train. "
                    + (f"Questions and articles seen in `{train_ref.ref}` are dropped." if train_ref
                       else "No cd-train was in the store: no overlap check was made.")),
    }
    built = how[corpus]
    per_source = [(o.src.pretty, n, o.src.card_notes(notes.get(n, {}))) for n, o in opened.items()]
    built += "".join(f"\n\n- {pretty} (`{n}`): {text}." for pretty, n, text in per_source if text)
    w.card_sections["How it was built"] = built
    w.extra.update({"corpus": corpus, "template": cfg.template,
                    "source_rows": counts, "source_inputs": {n: o.label for n, o in opened.items()}})
    if notes:
        w.extra["source_notes"] = notes
