"""``resetkit pool``: sample candidate answers per example with the paper's decoding grid."""

from __future__ import annotations

import os

import click

from resetkit.cli_options import engine_options, store_option, threads_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("examples")
@click.option("--model", required=True,
              help="Local model folder, .gguf file (converted once to a cached folder), Hub id, or the "
                   "server's model name (openai).")
@click.option("--backend", type=click.Choice(["transformers", "vllm", "openai"]), default="transformers",
              show_default=True, help="Generation backend.")
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
@click.option("--batch-size", type=int, default=64, show_default=True,
              help="transformers: rows per generate call.")
@click.option("--device", default="auto", show_default=True, help="transformers: auto, cpu, cuda, ...")
@click.option("--base-url", default=None, help="openai: server URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--chat/--completions", default=False, show_default=True,
              help="openai: /v1/chat/completions or /v1/completions.")
@click.option("--concurrency", type=int, default=32, show_default=True, help="openai: requests in flight.")
@click.option("--max-retries", type=int, default=5, show_default=True,
              help="openai: retries per request on 429/5xx/timeouts (Retry-After honoured).")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="openai: seconds per attempt.")
@click.option("--no-top-k", "no_top_k", is_flag=True,
              help="openai: never send top_k (servers that reject it).")
@click.option("--engine-arg", "engine_args", multiple=True, metavar="KEY=VALUE",
              help="vllm: extra vllm.LLM argument, e.g. gpu_memory_utilization=0.8 (repeatable).")
@click.option("--shard-examples", type=int, default=64, show_default=True,
              help="Examples per resumable shard.")
@engine_options("Run generation in this process, or on Ray actors holding the model (docs/ray.md).",
                "ray: model-holding actors (default: as many as the cluster holds).")
@click.option("--worker-cpus", type=float, default=1.0, show_default=True, help="ray: CPUs per actor.")
@click.option("--worker-gpus", type=float, default=None,
              help="ray: GPUs per actor (default: 1 for vllm, and for transformers where the cluster has "
                   "GPUs; else 0).")
@click.option("--dry-run", is_flag=True,
              help="Print the requests and prompt tokens the run would make; write nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@threads_option
@store_option
def pool(examples, model, backend, grid, template, system_prompt, stop, no_stop, runs, topk_temperature,
         max_new_tokens, seed, limit, split, name, revision, dtype, batch_size, device, base_url, chat, concurrency,
         max_retries, timeout, no_top_k, engine_args, shard_examples, engine, ray_address, workers, worker_cpus,
         worker_gpus, dry_run, no_progress, threads, store_dir):
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
        --engine-arg gpu_memory_utilization=0.8
      resetkit pool reset-seed --model my-model --backend openai --base-url http://127.0.0.1:8000/v1
      resetkit pool reset-seed --model ./outputs/mtl --topk-temperature 0.7 --limit 10 --dry-run
      resetkit pool cd-eval --split test --grid greedy --model ./outputs/reset --name eval-gen
      resetkit pool reset-seed --model /shared/models/mtl --backend vllm --engine ray --ray-address auto
    """
    from resetkit.config import parse_overrides
    from resetkit.errors import ResetkitError
    from resetkit.store import Store

    from .pool import PoolConfig, dry_run as do_dry_run, run_pool

    if stop and no_stop:
        raise ResetkitError("--stop and --no-stop exclude each other")
    stops = () if no_stop else tuple(s.encode("latin-1", "backslashreplace").decode("unicode_escape")
                                      for s in stop) or None
    if backend != "openai" and base_url:
        raise ResetkitError("--base-url is only for --backend openai")
    if backend == "openai" and not base_url and not os.environ.get("OPENAI_BASE_URL"):
        raise ResetkitError("--backend openai needs --base-url (or $OPENAI_BASE_URL)")
    cfg = PoolConfig(model=model, backend=backend, grid=grid, runs=runs, topk_temperature=topk_temperature,
                     template=template, system_prompt=system_prompt, stop=stops, threads=threads,
                     max_new_tokens=max_new_tokens, seed=seed, limit=limit,
                     revision=revision, dtype=dtype, chat=chat, batch_size=batch_size, device=device,
                     base_url=base_url or os.environ.get("OPENAI_BASE_URL"), concurrency=concurrency,
                     max_retries=max_retries, timeout=timeout, send_top_k=not no_top_k,
                     engine_args=parse_overrides(engine_args), shard_examples=shard_examples, engine=engine,
                     ray_address=ray_address, workers=workers, worker_cpus=worker_cpus, worker_gpus=worker_gpus)
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
