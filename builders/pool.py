"""Candidate pools (paper section 5.1, DESIGN.md section 6): several decodings per example.

``run_pool(store, examples_ref, cfg)`` reads an examples dataset, plans the decoding grid
for every example (``builders.grid``), generates with a backend (``builders.backends``) and
writes a ``pool`` dataset in the CANDIDATES schema, with the examples version as parent
and the model id + revision in the manifest.

Why it is built this way:
- every planned candidate has a stable id (hash of example, model, revision, template,
  decoding parameters, seed and sample index) and a seed derived from (global seed,
  example, sample index), so planning is a pure function of the inputs;
- candidates are generated in shards of ``shard_examples`` examples, each written atomically
  under ``store.workdir(name, version)``.  A re-run reads the shards, generates only the
  missing candidates (and retries rows that failed), and assembles the final dataset in plan
  order: a killed run, resumed, ends with the same dataset as an uninterrupted one;
- identical greedy requests of an example (the paper's top-k arm at temperature 0 is seven
  greedy decodes) are generated once and copied (``dedup_greedy``); identical texts of an
  example point at the first one through ``duplicate_of``, so judges score each text once.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import sys
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from resetkit import shards
from resetkit.config import (build, check_plugin_sets, execution_fields, field, options_class, plugin_options, run_field,
                             split_run_fields, to_dict)
from resetkit.engine import run_shards
from resetkit.errors import ResetkitError
from resetkit.schemas import CANDIDATES, check_columns
from resetkit.shards import shard_name
from resetkit.store import DatasetVersion, Store, short_hash

from .backends.base import BACKENDS
from .pool_worker import PoolWorker

BUILDER_VERSION = "1"


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    model: str = field("", help="Model: a local folder, a .gguf file (converted once to a folder), a Hub "
                                "id, or the model name an OpenAI-compatible server knows.")
    backend: str = field("transformers", help="Generation backend (builders.backends.BACKENDS).")
    grid: str = field("paper", help="Decoding grid: paper, paper-s, greedy, or a YAML file.")
    runs: int | None = field(None, help="Sampling runs per example (overrides the grid; paper-s = 2).")
    topk_temperature: float | None = field(
        None, help="Sample the top-k arm at this temperature (the paper: 0, i.e. greedy).")
    template: str | None = field(None, help="Re-render prompts with this template (alpaca, vicuna, "
                                            "vicuna-paper, chat: the model's own chat template); default: "
                                            "the examples' own template.")
    system_prompt: str | None = field(None, help="chat template: the system message (default: none, i.e. "
                                                 "whatever the model's template does without one).")
    stop: tuple | None = field(None, help="Stop strings (the text ends before the first); default: the "
                                          "template's turn markers, e.g. '### Instruction:' for alpaca; () "
                                          "for none.")
    max_new_tokens: int = field(480, help="Most tokens generated per candidate.")
    seed: int = field(0, help="Global seed: arm choices and per-candidate seeds derive from it.")
    limit: int | None = field(None, help="Use only the first N examples (after the split filter).")
    revision: str | None = field(None, help="Model revision (Hub models); local folders are fingerprinted.")
    dtype: str = field("auto", help="Weights dtype (transformers, vllm): auto, float32, bfloat16, float16. "
                                    "auto: the config's dtype (transformers); float32 on CPU (vllm).")
    dedup_greedy: bool = field(True, help="Generate identical greedy requests of an example once and copy "
                                          "the text to the others.")
    options: dict = field(default_factory=dict, help="Per-backend options {backend: {field: value}} (each "
                                                     "backend's Options; --set backend.NAME.FIELD=VALUE); "
                                                     "only those of `backend` are used.")
    # -- how to run (not part of the dataset version) --
    threads: int | None = run_field(None, help="CPU threads for torch (default: resetkit.threads.default_threads).")
    shard_examples: int = run_field(64, help="Examples per resumable shard.")
    engine: str = run_field("local", help="Where generation runs: local (this process) or ray (actors holding "
                                          "the model, one shard at a time; see docs/ray.md).")
    ray_address: str | None = run_field(None, help="ray: cluster address (auto, HOST:PORT, ray://HOST:10001); "
                                                   "default $RAY_ADDRESS, else a local Ray instance.")
    workers: int | None = run_field(None, help="ray: model-holding actors (default: as many as the cluster's "
                                               "CPUs / GPUs hold, at most one per shard).")
    worker_cpus: float = run_field(1.0, help="ray: CPUs reserved per actor (its torch threads).")
    worker_gpus: float | None = run_field(None, help="ray: GPUs per actor (default: 1 for vllm and for "
                                                     "transformers on a cluster with GPUs, else 0).")


# the model settings every backend gets (next to its own Options)
MODEL_SETTINGS = ("revision", "dtype", "seed", "system_prompt")


def backend_settings(cfg: PoolConfig):
    """The ``Options`` of ``cfg.backend`` (its part of ``cfg.options``); checks every backend
    named in ``cfg.options`` and every field (one clear error, did-you-mean)."""
    check_plugin_sets(BACKENDS, cfg.options)
    return plugin_options(BACKENDS, cfg.backend, cfg.options.get(cfg.backend))


def backend_options(cfg: PoolConfig) -> dict:
    """The keyword arguments of ``load_backend`` for ``cfg``: the model settings and the
    backend's own options."""
    return {**{k: getattr(cfg, k) for k in MODEL_SETTINGS}, **to_dict(backend_settings(cfg))}


def version_config(cfg: PoolConfig) -> dict:
    """What of ``cfg`` identifies the dataset: the stage fields and the used backend's options,
    both without their run fields (``run_field``: how a run goes, never what it produces)."""
    config = split_run_fields(cfg)[0]
    config["options"] = split_run_fields(backend_settings(cfg))[0]
    return config


def run_config(cfg: PoolConfig) -> dict:
    """How the run went (the manifest's ``run``): the run fields of the stage and the backend."""
    return {**split_run_fields(cfg)[1], **split_run_fields(backend_settings(cfg))[1]}


def pool_config(*layers: dict | None, **values) -> PoolConfig:
    """A PoolConfig from layered dicts and keywords (later wins), where a key that is no
    PoolConfig field but an option of the backend (``base_url`` for openai, ``batch_size``
    for transformers) sets that option: ``pool_config(model=m, backend="openai",
    base_url=url)``; ``resetkit eval --pool-set base_url=URL`` goes this way too."""
    stage = {f.name for f in dataclasses.fields(PoolConfig)}
    merged = [dict(layer or {}) for layer in (*layers, values)]
    backend = next((m["backend"] for m in reversed(merged) if m.get("backend")), PoolConfig.backend)
    fields = {f.name for f in dataclasses.fields(options_class(BACKENDS, backend))}
    options: dict = {}
    flat: list[dict] = []
    for layer in merged:
        for name, values in (layer.pop("options", None) or {}).items():
            options.setdefault(name, {}).update(values)
        own = {k: layer.pop(k) for k in list(layer) if k not in stage and k in fields}
        options.setdefault(backend, {}).update(own)
        flat.append(layer)
    return build(PoolConfig, *flat, {"options": {k: v for k, v in options.items() if v}})


def pool_identity(overrides: dict, backend: str) -> dict:
    """The part of flat PoolConfig ``overrides`` (as :func:`pool_config` takes) that is part of
    a dataset's identity: without the run fields of the stage and of ``backend``."""
    run = set(execution_fields(PoolConfig)) | set(execution_fields(options_class(BACKENDS, backend)))
    return {k: v for k, v in overrides.items() if k not in run}


# -- planning ----------------------------------------------------------------------------

@dataclasses.dataclass
class PlannedExample:
    split: str
    example_id: str
    prompt: str
    template: str | None
    decodings: list


def _rerender(row: dict, target: str, where: str) -> str:
    """The example's prompt rendered with ``target`` instead of its own template.

    The input block is recovered exactly from the stored prompt: render the source template
    around a marker, then strip the text before and after it.
    """
    from builders.templates import render

    source, prompt, instruction = row.get("template"), row["prompt"], row.get("instruction") or ""
    if source == target:
        return prompt
    if not source:
        raise ResetkitError(f"{where}: example {row['id']} has no template name; "
                            f"cannot re-render it with {target!r}")
    marker = "\x00INPUT\x00"
    head, _, tail = render(source, instruction, marker).partition(marker)
    if prompt == render(source, instruction, None):
        return render(target, instruction, None)
    if prompt.startswith(head) and prompt.endswith(tail) and len(prompt) >= len(head) + len(tail):
        return render(target, instruction, prompt[len(head):len(prompt) - len(tail)])
    raise ResetkitError(f"{where}: example {row['id']}: prompt does not match template {source!r}; "
                        f"cannot re-render it with {target!r}")


def load_examples(ex: DatasetVersion, split: str | None, cfg: PoolConfig):
    """(examples to sample, drops {(source, reason): n}) in dataset order; empty prompts skipped."""
    splits = [split] if split else list(ex.splits)
    cols = ["id", "prompt", "template", "source", "instruction"]
    out, drops = [], {}
    for s in splits:
        files = ex.files(s)
        schema = pq.read_schema(files[0])
        check_columns(schema, ["id", "prompt"], f"examples {ex.ref}", str(files[0]))
        table = ex.read(s, columns=[c for c in cols if c in schema.names])
        for row in table.to_pylist():
            if cfg.limit is not None and len(out) >= cfg.limit:
                return out, drops
            prompt = row.get("prompt")
            if prompt is None or not prompt.strip():
                key = (row.get("source") or "unknown", "empty prompt")
                drops[key] = drops.get(key, 0) + 1
                continue
            template = row.get("template")
            if cfg.template:
                prompt, template = _rerender(row, cfg.template, f"examples {ex.ref}"), cfg.template
            out.append((s, row["id"], prompt, template))
    return out, drops


def candidate_id(example_id: str, model: str, revision: str | None, template: str | None, d,
                 max_new_tokens: int, stop=(), system: str | None = None) -> str:
    """``model`` is the model's key (its content identity for local models, never a path)."""
    return short_hash({"example": example_id, "model": model, "revision": revision, "template": template,
                       "system": system, "stop": list(stop), "temperature": d.temperature, "top_k": d.top_k,
                       "top_p": d.top_p, "seed": d.seed, "max_new_tokens": max_new_tokens,
                       "sample_index": d.sample_index}, 16)


def stops_for(template: str | None, cfg: PoolConfig) -> tuple:
    """The stop strings of a prompt of ``template``: --stop, else the template's turn markers."""
    from .templates import STOP_STRINGS

    if cfg.stop is not None:
        return tuple(cfg.stop)
    return STOP_STRINGS.get(template, ()) if template else ()


def render_chat(examples: list, backend, cfg: PoolConfig) -> list:
    """Wrap the user messages of ``chat`` examples with the model's chat template.

    Backends with a tokenizer (transformers, vllm) render here, so the prompt column holds what
    the model saw; the openai backend with ``--chat`` leaves it to the server (which applies the
    served model's template to the system message, if any, and the user message)."""
    from resetkit.chat import ChatFormat

    has_chat = any(t == "chat" for _, _, _, t in examples)
    if cfg.system_prompt and examples and not has_chat:
        raise ResetkitError("--system-prompt is for prompts of the chat template (--template chat)")
    if not has_chat:
        return examples
    tok = backend.tokenizer()
    if tok is None:
        if not backend.server_chat():
            raise ResetkitError("--template chat with --backend openai needs --chat: the server renders the "
                                "model's chat template (send the user message to /v1/chat/completions)")
        return examples  # the system prompt goes as the request's system message
    chat = ChatFormat(tok, cfg.system_prompt)  # its generation prompt read once, not per example
    return [(s, ex_id, chat.prompt(prompt) if t == "chat" else prompt, t) for s, ex_id, prompt, t in examples]


def make_plan(examples, grid, cfg: PoolConfig) -> list[PlannedExample]:
    from .grid import plan_example

    return [PlannedExample(s, ex_id, prompt, template, plan_example(ex_id, grid, cfg.seed))
            for s, ex_id, prompt, template in examples]


def resolve_grid(cfg: PoolConfig):
    from .grid import load_grid

    return load_grid(cfg.grid).with_runs(cfg.runs).with_topk_temperature(cfg.topk_temperature)


# -- shards ----------------------------------------------------------------------------------

def _chunks(items: list, size: int) -> Iterator[tuple[int, list]]:
    for start in range(0, len(items), max(1, size)):
        yield start, items[start:start + size]


def _rows_for(chunk: list[PlannedExample], ids: dict, done: set, info: dict, cfg: PoolConfig, backend):
    """Generate the missing candidates of ``chunk``: returns candidate rows (dicts)."""
    from .backends import GenRequest

    rows, requests, copies = [], [], {}
    for pe in chunk:
        first_greedy: dict = {}
        for d in pe.decodings:
            cid = ids[(pe.example_id, d.sample_index)]
            if cid in done:
                continue
            rows.append({"example_id": pe.example_id, "candidate_id": cid, "model": info["model"],
                         "model_revision": info["revision"], "template": pe.template, "prompt": pe.prompt,
                         "temperature": d.temperature, "top_k": d.top_k, "top_p": d.top_p, "seed": d.seed,
                         "arm": d.arm, "sample_index": d.sample_index, "greedy": d.greedy,
                         "duplicate_of": None, "backend": backend.name})
            if cfg.dedup_greedy and d.greedy:
                if "key" in first_greedy:
                    copies[cid] = first_greedy["key"]
                    continue
                first_greedy["key"] = cid
            requests.append(GenRequest(cid, pe.prompt, d.temperature, d.top_k, d.top_p, d.seed,
                                       cfg.max_new_tokens, stops_for(pe.template, cfg)))
    return rows, requests, copies


@dataclasses.dataclass
class ShardJob:
    """One shard's work: candidate rows still missing, the requests that fill them (identical
    greedy requests once) and ``copies`` {candidate id: candidate id whose text it copies}."""

    start: int
    rows: list
    requests: list
    copies: dict

    @property
    def filename(self) -> str:
        return shard_name(self.start, short_hash([r["candidate_id"] for r in self.rows]))


def write_shard(workdir, job: ShardJob, results) -> list[str]:
    """Write ``job``'s rows filled with ``results`` as one atomic shard (the single write
    path of both engines); returns the ids of the candidates generated without error."""
    rows = _fill([dict(r) for r in job.rows], results, job.copies, _stops_of(job))
    shards.write_shard(workdir, job.filename, pa.Table.from_pylist(rows, schema=CANDIDATES))
    return [r["candidate_id"] for r in rows if r["finish_reason"] != "error"]


def _stops_of(job: ShardJob) -> dict:
    stops = {r.key: r.stop for r in job.requests}
    return {c: stops.get(job.copies.get(c, c), ()) for c in (row["candidate_id"] for row in job.rows)}


def _fill(rows, results, copies, stops=None):
    """Fill rows with their results.  A text that still holds a stop string (a backend that does
    not stop on strings, such as a server the openai backend talks to) is cut before it here,
    so every backend gives the same text; its num_tokens stays what the backend generated."""
    from .backends.base import cut_at_stop

    by_key = {r.key: r for r in results}
    for row in rows:
        res = by_key[copies.get(row["candidate_id"], row["candidate_id"])]
        text, finish = res.text, res.finish_reason
        if text is not None and stops and stops.get(row["candidate_id"]):
            text, hit = cut_at_stop(text, stops[row["candidate_id"]])
            finish = "stop" if hit else finish
        row.update(text=text, num_tokens=res.num_tokens, finish_reason=finish, error=res.error)
    return rows


def mark_duplicates(table: pa.Table) -> pa.Table:
    """Set duplicate_of: the first candidate (by sample_index) of the same example with the same
    text.  Error rows (text null) are never duplicates.  ``table`` is in plan order."""
    first: dict = {}
    dup = []
    for ex_id, cid, text in zip(table["example_id"].to_pylist(), table["candidate_id"].to_pylist(),
                                table["text"].to_pylist()):
        if text is None:
            dup.append(None)
            continue
        key = (ex_id, text)
        dup.append(first.get(key))
        first.setdefault(key, cid)
    return table.set_column(table.schema.get_field_index("duplicate_of"), "duplicate_of",
                            pa.array(dup, pa.string()))


# -- the run ---------------------------------------------------------------------------------

def _prepare(store: Store, examples_ref, cfg: PoolConfig, name: str, split: str | None):
    from .backends import load_backend

    from resetkit.engine import check_engine

    from resetkit.threads import apply_threads

    if not cfg.model:
        raise ResetkitError("no model given (--model PATH_OR_ID)")
    holds_model = BACKENDS.get(cfg.backend).holds_model
    if holds_model:
        apply_threads(cfg.threads)
    if check_engine(cfg.engine, cfg.ray_address) == "ray" and not holds_model:
        raise ResetkitError(f"--engine ray runs models on Ray actors; the {cfg.backend} backend only sends "
                            "requests (use --engine local)")
    ex = store.resolve(examples_ref)
    grid = resolve_grid(cfg)
    backend = load_backend(cfg.backend, cfg.model, **backend_options(cfg))
    backend.check()  # fails fast: missing model, unreachable server, missing extra
    examples, drops = load_examples(ex, split, cfg)
    examples = render_chat(examples, backend, cfg)
    return ex, grid, backend, examples, drops


def dry_run(store: Store, examples_ref, cfg: PoolConfig, *, split: str | None = None, out=None) -> dict:
    """Count the requests and prompt tokens a run would make; print them; write nothing."""
    out = out or sys.stdout
    ex, grid, backend, examples, drops = _prepare(store, examples_ref, cfg, "pool", split)
    plan = make_plan(examples, grid, cfg)
    n_candidates = sum(len(p.decodings) for p in plan)
    n_requests = 0
    prompt_tokens = 0
    counts = backend.count_tokens([p.prompt for p in plan]) if plan else []
    for i, p in enumerate(plan):
        greedy = sum(d.greedy for d in p.decodings)
        req = len(p.decodings) - (greedy - 1 if cfg.dedup_greedy and greedy > 1 else 0)
        n_requests += req
        if counts is not None:
            prompt_tokens += counts[i] * req
    summary = {"examples": len(plan), "skipped": sum(drops.values()), "candidates": n_candidates,
               "requests": n_requests, "prompt_tokens": prompt_tokens if counts is not None else None,
               "max_new_tokens": cfg.max_new_tokens, "grid": grid.to_dict(), "backend": cfg.backend,
               "model": cfg.model}
    print(f"dry run: {ex.ref} -> {cfg.backend} {cfg.model} (grid {grid.name}, {grid.per_example} "
          f"candidates per example)", file=out)
    print(f"  examples: {len(plan)} (skipped: {summary['skipped']} with an empty prompt)", file=out)
    print(f"  candidates: {n_candidates}; requests: {n_requests}"
          + (" (identical greedy requests generated once)" if n_requests < n_candidates else ""), file=out)
    tokens = "unknown for this backend" if counts is None else f"{prompt_tokens:,}"
    print(f"  prompt tokens sent: {tokens}; at most {cfg.max_new_tokens} new tokens per request", file=out)
    for p in plan[:3]:
        d = p.decodings[0]
        print(f"  e.g. {p.example_id}: arm {d.arm}, " + ", ".join(
            f"(T={x.temperature}, k={x.top_k})" for x in p.decodings), file=out)
    return summary


def run_pool(store: Store, examples_ref, cfg: PoolConfig, *, name: str = "pool", split: str | None = None,
             progress: bool = True) -> DatasetVersion:
    """Generate (or resume) the candidate pool of ``examples_ref`` and commit it as ``name``.

    Returns the committed DatasetVersion.  Same inputs and config -> same version; if that
    version exists already it is returned without generating anything.
    """
    ex, grid, backend, examples, drops = _prepare(store, examples_ref, cfg, name, split)
    info = backend.model_info()
    key = info.get("key", info["model"])
    config = version_config(cfg)
    # the model's identity, never the spelling of its path: a local folder (a converted .gguf
    # included) is the hash over its files (listed in extra["model"]["files"]); a Hub model its id
    config.update(grid=grid.to_dict(), split=split, model=key)
    model_input = {"model": key, "revision": info["revision"]}
    if info.get("dtype"):
        model_input["dtype"] = info["dtype"]
    writer = store.create(name, builder="pool", config=config, parents=[ex], builder_version=BUILDER_VERSION,
                          inputs={"examples": ex.ref, "model": model_input})
    with store.stage_lock(name, writer.version, "pool"):  # identical runs take turns, nothing paid twice
        return _run_locked(store, writer, ex, grid, backend, examples, drops, info, cfg, name, split, progress)


def _run_locked(store, writer, ex, grid, backend, examples, drops, info, cfg, name, split, progress):
    from tqdm.auto import tqdm

    existing = store.root / name / writer.version
    if (existing / "manifest.json").is_file():
        backend.close()
        return DatasetVersion(name, writer.version, existing)

    plan = make_plan(examples, grid, cfg)
    key = info.get("key", info["model"])
    ids = {(p.example_id, d.sample_index): candidate_id(p.example_id, key, info["revision"], p.template, d,
                                                         cfg.max_new_tokens, stops_for(p.template, cfg),
                                                         cfg.system_prompt if p.template == "chat" else None)
           for p in plan for d in p.decodings}
    planned = set(ids.values())
    workdir = store.workdir(name, writer.version)
    done = shards.done_keys(workdir, "candidate_id", CANDIDATES, pc_not_error) & planned
    total = len(ids)
    from resetkit.runlog import progress_file

    # on the console even inside a run whose other output goes to its log (resetkit eval)
    bar = tqdm(total=total, initial=len(done), unit="cand", desc=f"pool {cfg.backend}", disable=not progress,
               dynamic_ncols=True, smoothing=0.1, file=progress_file())
    jobs: dict[int, ShardJob] = {}  # planned lazily (the local engine), dropped once written

    def plan_jobs():
        for start, chunk in _chunks(plan, cfg.shard_examples):
            job = ShardJob(start, *_rows_for(chunk, ids, done, info, cfg, backend))
            if job.rows:
                jobs[start] = job
                yield start, job.requests

    try:
        if cfg.engine == "ray":
            pending = list(plan_jobs())
            backend.close()  # the actors load their own copies
            run = _run_on_ray(pending, cfg, info.get("path", info["model"]))
        else:
            run = run_shards(plan_jobs(), functools.partial(PoolWorker, backend, bar.update))
        generated, ray_stats = _write_results(run, jobs, workdir, done, bar, cfg)
    except ResetkitError as exc:
        raise ResetkitError(f"{exc.message} -- {len(done)} of {total} candidates are saved in "
                            f"{workdir}; run the same command again to resume") from exc
    finally:
        dtype_used = backend_dtype(backend, info)
        bar.close()
        backend.close()

    final = _assemble(shards.read_shards(workdir, CANDIDATES), plan, ids)
    result = _commit(writer, final, plan, drops, ex, info, grid, cfg, name, split, generated, dtype_used,
                     ray_stats)
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def _write_results(run, jobs: dict, workdir, done: set, bar, cfg) -> tuple[int, dict | None]:
    """Write each finished shard of ``run`` (the driver writes every shard); returns the
    candidates generated and, on Ray, the actors, nodes and shards the run used."""
    generated = 0
    try:
        for start, results in run:
            job = jobs.pop(start)
            done.update(write_shard(workdir, job, results))
            generated += len(job.requests)
            # the local worker moved the bar per request; copies of greedy texts (and a Ray shard) count here
            bar.update(len(job.rows) - (len(job.requests) if cfg.engine == "local" else 0))
    finally:
        run.close()
    if cfg.engine != "ray":
        return generated, None
    return generated, {"workers": run.workers, "nodes": len(set(run.nodes.values())), "shards": len(run.nodes)}


def _run_on_ray(jobs: list, cfg: PoolConfig, model: str):
    """The shards' requests on Ray actors each loading ``model`` (the driver's resolved model
    id or absolute folder: shared storage) once; an actor holds a GPU for vllm, and for
    transformers on a cluster with GPUs (--worker-gpus overrides)."""
    from resetkit.engine import cluster_gpus

    options = backend_options(cfg)
    device = options.get("device", "auto")
    gpus = 0.0
    if cfg.worker_gpus is not None:
        gpus = float(cfg.worker_gpus)
    elif jobs and cluster_gpus(cfg.ray_address) >= 1:
        gpus = 1.0 if cfg.backend == "vllm" or device == "auto" or device.startswith("cuda") else 0.0
    if gpus == 0 and device == "auto" and "device" in options:
        options["device"] = "cpu"
    factory = functools.partial(PoolWorker.load, cfg.backend, model, options)
    return run_shards(jobs, factory, "ray", address=cfg.ray_address, workers=cfg.workers,
                      num_cpus=cfg.worker_cpus, num_gpus=gpus)


def _commit(writer, final, plan, drops, ex, info, grid, cfg, name, split, generated, dtype_used, ray_stats=None):
    """Write the assembled pool, its manifest and card; returns the committed version."""
    n_err = sum(1 for f in final["finish_reason"].to_pylist() if f == "error")
    n_dup = final["duplicate_of"].null_count
    with writer as w:
        for (src, reason), n in sorted(drops.items()):
            w.add_drop(src, reason, n)
        for s in dict.fromkeys(p.split for p in plan):
            part = final.filter(pa.array([sp == s for sp in _split_of(final, plan)]))
            w.write(s, part, schema=CANDIDATES)
        if not plan:
            w.write(split or "train", CANDIDATES.empty_table())
        w.extra["examples"] = ex.ref
        w.extra["model"] = {"model": info["model"], "revision": info["revision"], "backend": cfg.backend}
        if info.get("dtype"):
            w.extra["model"]["dtype"] = dtype_used
        if "fingerprint" in info and "files" in info["fingerprint"]:
            w.extra["model"]["files"] = info["fingerprint"]["files"]
        if "fingerprint" in info and "gguf" in info["fingerprint"]:
            w.extra["model"]["gguf"] = info["fingerprint"]["gguf"]
        w.extra["prompts"] = {"templates": sorted({p.template for p in plan if p.template}),
                              "system_prompt": cfg.system_prompt,
                              "stop": {t: list(stops_for(t, cfg)) for t in sorted({p.template or "" for p in plan})}}
        w.extra["grid"] = grid.to_dict()
        w.extra["counts"] = {"examples": len(plan), "candidates": final.num_rows, "errors": n_err,
                             "duplicates": final.num_rows - n_dup, "greedy": sum(final["greedy"].to_pylist()),
                             "generated_this_run": generated}
        w.extra["run"] = run_config(cfg)
        if ray_stats:  # the actors this run started, the nodes they ran on, the shards they made
            w.extra["run"]["ray"] = ray_stats
        if BACKENDS.get(cfg.backend).holds_model:
            import os

            w.extra["run"]["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0")) or None
        w.card_meta.update(pretty_name=f"RESET candidate pool ({name})", task_categories=["text-generation"])
        w.card_sections["Decoding grid"] = _grid_markdown(grid, cfg, {**info, "dtype": dtype_used})
        w.card_sections["Prompts"] = _prompts_markdown(w.extra["prompts"])
    return w.result


def backend_dtype(backend, info: dict) -> str | None:
    """The dtype the backend ran (vLLM knows it for sure only once its engine started)."""
    resolved = getattr(backend, "resolved_dtype", None)
    return resolved() if resolved is not None else info.get("dtype")


def _prompts_markdown(prompts: dict) -> str:
    from .templates import DESCRIPTIONS

    lines = []
    for t in prompts["templates"] or ["(the examples' own prompts)"]:
        lines.append(f"- Template **{t}**" + (f": {DESCRIPTIONS[t]}" if t in DESCRIPTIONS else ""))
    if prompts["system_prompt"]:
        lines.append(f"- System prompt: `{prompts['system_prompt']}`")
    for t, stops in prompts["stop"].items():
        if stops:
            lines.append(f"- Stop strings{' of ' + t if t else ''}: " + ", ".join(f"`{s!r}`" for s in stops))
    return "\n".join(lines)


def pc_not_error(table: pa.Table):
    import pyarrow.compute as pc

    return pc.fill_null(pc.not_equal(table["finish_reason"], "error"), True)


def _split_of(final: pa.Table, plan: list[PlannedExample]) -> list[str]:
    split = {p.example_id: p.split for p in plan}
    return [split[e] for e in final["example_id"].to_pylist()]


def _assemble(shards: pa.Table | None, plan: list[PlannedExample], ids: dict) -> pa.Table:
    """All planned candidates in plan order, one row each (a successful row beats an error row)."""
    best: dict = {}
    rows = shards.to_pylist() if shards is not None else []
    for row in rows:
        cid = row["candidate_id"]
        if cid not in best or best[cid]["finish_reason"] == "error":
            best[cid] = row
    ordered = []
    for p in plan:
        for d in p.decodings:
            cid = ids[(p.example_id, d.sample_index)]
            if cid not in best:
                raise ResetkitError(f"internal error: candidate {cid} was planned but not generated")
            ordered.append(best[cid])
    return mark_duplicates(pa.Table.from_pylist(ordered, schema=CANDIDATES))


def _grid_markdown(grid, cfg: PoolConfig, info: dict) -> str:
    dtype = f", dtype `{info['dtype']}`" if info.get("dtype") else ""
    lines = [f"Grid `{grid.name}`: {grid.runs} run(s), arm choice `{grid.choose}` (seeded with "
             f"seed {cfg.seed}), {grid.per_example} candidates per example, at most {cfg.max_new_tokens} "
             f"new tokens. Model `{info['model']}` revision `{info['revision']}`, "
             f"backend `{cfg.backend}`{dtype}.", "",
             "| arm | varies | values | fixed |", "|---|---|---|---|"]
    for a in grid.arms:
        fixed = ", ".join(f"{k}={v}" for k, v in a.fixed) or "-"
        lines.append(f"| {a.name} | {a.vary} | {', '.join(str(v) for v in a.values)} | {fixed} |")
    lines += ["", "Temperature 0 is greedy decoding (`greedy` = true); top_k 0 means top-k off. Identical "
              "texts of one example point at the first through `duplicate_of`."]
    return "\n".join(lines)
