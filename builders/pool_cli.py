"""``resetkit pool``: sample candidate answers per example with the paper's decoding grid.

The ``--backend`` choices and one flag per backend option (``--batch-size``, ``--base-url``,
``--concurrency``...) are generated from the backends' ``Options`` (builders.backends.BACKENDS);
``--set backend.NAME.FIELD=VALUE`` sets any of them, those of a backend added at run time too.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

import click

from resetkit.cli_options import RegistryChoice, engine_options, store_option, threads_option
from resetkit.config import describe, options_class, value_type
from resetkit.errors import ResetkitError

from .backends.base import BACKENDS


def backend_flags() -> dict[str, tuple]:
    """field name -> (its type, default, help, the backends declaring it), over every
    registered backend's ``Options``."""
    out: dict[str, tuple] = {}
    for name in BACKENDS.names():
        cls = options_class(BACKENDS, name)
        hints = typing.get_type_hints(cls)
        for fname, default, text in describe(cls):
            if fname in out:
                out[fname][3].append(name)
            else:
                out[fname] = (value_type(hints[fname]), default, text, [name])
    return out


def backend_options_flags(fn):
    """A click flag per backend option (``--batch-size``, ``--chat/--no-chat``...), generated
    from ``backend_flags()``; ``fn`` takes them as ``**backend_flags``."""
    reserved = set(inspect.signature(fn).parameters)
    for fname, (typ, default, text, owners) in reversed(backend_flags().items()):
        if fname in reserved:
            raise RuntimeError(f"backend option {fname!r} ({', '.join(owners)}) clashes with a pool flag: rename it")
        flag = "--" + fname.replace("_", "-")
        help = f"{', '.join(owners)}: {text}"
        if typ is bool:
            fn = click.option(f"{flag}/--no-{flag[2:]}", fname, default=None,
                              help=f"{help} [default: {'on' if default else 'off'}]")(fn)
        elif typ is dict:
            fn = click.option(flag, fname, multiple=True, metavar="KEY=VALUE", help=f"{help} (repeatable)")(fn)
        else:
            fn = click.option(flag, fname, type=typ if typ in (int, float) else str, default=None,
                              help=help + ("" if default is None else f" [default: {default}]"))(fn)
    return fn


def backend_options_given(backend: str, flags: dict, sets: dict) -> dict:
    """``PoolConfig.options`` from the option flags given (those of ``backend``; a flag of
    another backend is an error) and ``--set backend.NAME.FIELD=VALUE`` (later wins)."""
    from resetkit.config import parse_overrides

    known = backend_flags()
    own = {f.name for f in dataclasses.fields(options_class(BACKENDS, backend))}
    for fname in flags:
        if fname not in own:
            raise ResetkitError(f"--{fname.replace('_', '-')} is an option of the {', '.join(known[fname][3])} "
                                f"backend, not of --backend {backend}")
    values = {k: (parse_overrides(v) if known[k][0] is dict else v) for k, v in flags.items()}
    options = {name: dict(v) for name, v in sets.items()}
    options[backend] = {**values, **options.get(backend, {})}
    return {k: v for k, v in options.items() if v}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("examples")
@click.option("--model", required=True,
              help="Local model folder, .gguf file (converted once to a cached folder), Hub id, or the "
                   "server's model name (openai).")
@click.option("--backend", type=RegistryChoice(BACKENDS), default="transformers", show_default=True,
              help="Generation backend; its options: the flags below that name it, or --set.")
@click.option("--grid", default="paper", show_default=True,
              help="Decoding grid: paper, paper-s, greedy, or a YAML file (see docs/pool.md).")
@click.option("--template", default=None,
              help="Re-render prompts with this template (alpaca, vicuna, vicuna-paper, or chat: the model's own "
                   "chat template); default: the examples' own template.")
@click.option("--system-prompt", default=None, help="chat template: the system message.")
@click.option("--stop", "stop", multiple=True, metavar="TEXT",
              help="Stop string (repeatable); default: the template's turn markers (e.g. '### Instruction:' "
                   "for alpaca, 'USER:' for vicuna). Backslash escapes such as \\n are decoded.")
@click.option("--no-stop", is_flag=True, help="No stop strings (run to EOS or --max-new-tokens).")
@click.option("--runs", type=int, default=None, help="Sampling runs per example (overrides the grid).")
@click.option("--topk-temperature", type=float, default=None,
              help="Sample the top-k arm at this temperature (default: the paper's 0 = greedy).")
@click.option("--max-new-tokens", type=int, default=480, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Global seed (arm choices, per-candidate seeds).")
@click.option("--limit", type=int, default=None, help="Only the first N examples.")
@click.option("--split", default=None, help="Only this split of EXAMPLES (train, validation, test).")
@click.option("--name", default="pool", show_default=True, help="Name of the pool dataset to write.")
@click.option("--revision", default=None, help="Model revision (Hub models).")
@click.option("--dtype", default="auto", show_default=True,
              help="transformers/vllm weights dtype (auto: the config's for transformers, float32 for vllm on "
                   "CPU, so greedy texts agree).")
@click.option("--shard-examples", type=int, default=64, show_default=True,
              help="Examples per resumable shard.")
@engine_options("Run generation in this process, or on Ray actors holding the model (docs/ray.md).",
                "ray: model-holding actors (default: as many as the cluster holds).")
@click.option("--worker-cpus", type=float, default=1.0, show_default=True, help="ray: CPUs per actor.")
@click.option("--worker-gpus", type=float, default=None,
              help="ray: GPUs per actor (default: 1 for vllm, and for transformers where the cluster has "
                   "GPUs; else 0).")
@click.option("--set", "sets", multiple=True, metavar="backend.NAME.FIELD=VALUE",
              help="A backend option, e.g. --set backend.openai.concurrency=8 (repeatable; same as its flag).")
@click.option("--dry-run", is_flag=True,
              help="Print the requests and prompt tokens the run would make; write nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@threads_option
@store_option
@backend_options_flags
def pool(examples, model, backend, grid, template, system_prompt, stop, no_stop, runs, topk_temperature,
         max_new_tokens, seed, limit, split, name, revision, dtype, shard_examples, engine, ray_address, workers,
         worker_cpus, worker_gpus, sets, dry_run, no_progress, threads, store_dir, **backend_flags):
    """Sample candidate answers for every example of EXAMPLES (a dataset in the store) with the
    paper's decoding grid, and write them as a versioned pool dataset.

    Re-running the same command after an interruption resumes: finished shards are kept and
    nothing already generated is generated again. The API key of the openai backend is read
    from $OPENAI_API_KEY only (never written anywhere).

    \b
    Examples:
      resetkit pool reset-seed --model ./outputs/mtl --backend transformers
      resetkit pool reset-seed --model SmolLM2-135M-Instruct.Q4_1.gguf --template chat --max-new-tokens 128
      resetkit pool reset-seed --model ./outputs/mtl --threads 1 --stop "### " --stop "\\n\\n\\n"
      resetkit pool reset-seed --model ./outputs/mtl --backend vllm --grid paper-s \\
        --engine-args gpu_memory_utilization=0.8
      resetkit pool reset-seed --model my-model --backend openai --set backend.openai.concurrency=8
      resetkit pool reset-seed --model my-model --backend openai --base-url http://127.0.0.1:8000/v1
      resetkit pool reset-seed --model ./outputs/mtl --topk-temperature 0.7 --limit 10 --dry-run
      resetkit pool cd-eval --split test --grid greedy --model ./outputs/reset --name eval-gen
      resetkit pool reset-seed --model /shared/models/mtl --backend vllm --engine ray --ray-address auto
    """
    from resetkit.config import parse_sets
    from resetkit.store import Store

    from .pool import dry_run as do_dry_run, pool_config, run_pool

    if stop and no_stop:
        raise ResetkitError("--stop and --no-stop exclude each other")
    stops = () if no_stop else tuple(s.encode("latin-1", "backslashreplace").decode("unicode_escape")
                                      for s in stop) or None
    given = {k: v for k, v in backend_flags.items() if v not in (None, ())}
    options = backend_options_given(backend, given, parse_sets(sets, ("backend",)).get("backend", {}))
    cfg = pool_config({"model": model, "backend": backend, "grid": grid, "runs": runs,
                       "topk_temperature": topk_temperature, "template": template, "system_prompt": system_prompt,
                       "stop": stops, "threads": threads, "max_new_tokens": max_new_tokens, "seed": seed,
                       "limit": limit, "revision": revision, "dtype": dtype, "shard_examples": shard_examples,
                       "engine": engine, "ray_address": ray_address, "workers": workers, "worker_cpus": worker_cpus,
                       "worker_gpus": worker_gpus, "options": options})
    store = Store(store_dir)
    if dry_run:
        do_dry_run(store, examples, cfg, split=split)
        return
    from resetkit import runlog

    # the run's own lines and one progress bar on the console; library output in the log it names
    with runlog.capture(runlog.store_log_path(store.root, "pool", name), header=f"resetkit pool {examples}") as con:
        version = run_pool(store, examples, cfg, name=name, split=split, progress=not no_progress)
    if con.log_path is not None:
        click.echo(f"log: {con.log_path}")
    counts = version.manifest.get("counts", {})
    click.echo(f"wrote {version.ref}: {counts.get('candidates', 0)} candidates for "
               f"{counts.get('examples', 0)} "
               f"examples ({counts.get('errors', 0)} errors, {counts.get('duplicates', 0)} duplicate texts) "
               f"-> {version.path}")
