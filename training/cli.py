"""``resetkit train RECIPE``: check everything cheaply, write the plan, then train or launch.

Bad input (unknown recipe, missing dataset or column, missing model, bad DeepSpeed config, an
output folder that already holds a run) fails here in milliseconds, before torch, transformers
or deepspeed are imported and before any launcher starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from resetkit.cli_options import store_option, threads_option
from resetkit.errors import ResetkitError


def _existing_run(output: Path, plan: dict) -> bool:
    from .sft import has_checkpoint

    dirs = [Path(s["config"]["output_dir"]) for s in plan["stages"]]
    return (output / "resetkit-train.yaml").is_file() or any(
        has_checkpoint(d) or (d / "training_results.json").is_file() for d in dirs)


def _check_same_plan(old: dict, new: dict) -> None:
    """--resume must continue the same run: same stages, data versions and settings."""
    diffs = []
    if [s["name"] for s in old["stages"]] != [s["name"] for s in new["stages"]]:
        diffs.append(f"stages {[s['name'] for s in old['stages']]} vs {[s['name'] for s in new['stages']]}")
    else:
        for so, sn in zip(old["stages"], new["stages"]):
            for key in sorted(set(so["config"]) | set(sn["config"])):
                if so["config"].get(key) != sn["config"].get(key):
                    diffs.append(f"stage {so['name']} {key}: {so['config'].get(key)!r} (run) vs "
                                 f"{sn['config'].get(key)!r} (now)")
    if diffs:
        raise ResetkitError("--resume: this command differs from the run being resumed: " + "; ".join(diffs)
                            + ". Pass the same values (pin NAME@VERSION) or choose another --output")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe")
@click.option("--model", help="Base model: local folder or Hub id (for two-stage recipes: stage one's start).")
@click.option("--data", "data", multiple=True, metavar="DATASET",
              help="Training dataset NAME or NAME@VERSION (repeatable; replaces the recipe's). "
                   "Two-stage recipes: STAGE=DATASET.")
@click.option("--deepspeed", default=None, metavar="zero3|NAME|PATH",
              help="DeepSpeed config: zero3 (default), zero2, zero3-offload, zero2-offload, a JSON path, or none.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: outputs/RECIPE).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set learning_rate=5e-6; STAGE.KEY=VALUE for one stage.")
@click.option("--template", type=click.Choice(["auto", "chat", "plain"]), default=None,
              help="chat: the model's own chat template, only the assistant turn trained; plain: prompt + "
                   "response + EOS as stored; auto (default): chat for rows whose template column is 'chat'. "
                   "Same as --set template=...")
@click.option("--system-prompt", default=None, help="chat template: system message for user-message prompts.")
@click.option("--save-total-limit", type=int, default=None, metavar="N",
              help="Checkpoints to keep (default 2: the best by eval loss and the last; 0 keeps all). "
                   "Same as --set save_total_limit=N.")
@click.option("--resume", is_flag=True, help="Continue the run in --output from its last checkpoint.")
@click.option("--nproc", type=int, default=None, help="Processes per node: start them with the launcher.")
@click.option("--hostfile", type=click.Path(dir_okay=False), default=None,
              help="MPI-style hostfile (HOST slots=N per line): multi-node launch through deepspeed.")
@click.option("--launcher", type=click.Choice(["deepspeed", "torchrun"]), default="deepspeed", show_default=True,
              help="Launcher used with --nproc/--hostfile.")
@click.option("--dry-run", is_flag=True, help="Check inputs, print the resolved plan and command, train nothing.")
@threads_option
@store_option
def train(recipe, model, data, deepspeed, output, overrides, template, system_prompt, save_total_limit, resume,
          nproc, hostfile, launcher, dry_run, threads, store_dir):
    """Fine-tune with a recipe (paper A.3 settings) under DeepSpeed ZeRO-3.

    Recipes: cd, if, mtl, reset, reset-s, cd-then-if, if-then-cd (training/configs/*.yaml),
    or a path to your own YAML. The output folder gets the best model (by evaluation loss),
    the checkpoints, resetkit-train.yaml (the resolved plan) and a README.md model card that
    names the base model and every dataset as NAME@VERSION.

    \b
    Examples:
      resetkit train mtl --model ./vicuna-7b --output outputs/mtl
      resetkit train reset --model outputs/mtl --data selection --nproc 8
      resetkit train cd-then-if --model huggyllama/llama-7b --data cd=cd-train --data if=if-train
      resetkit train reset --model ./tiny --set max_steps=10 --set save_steps=2 --set eval_steps=2
      resetkit train reset --model outputs/mtl --output outputs/reset --resume
      resetkit train reset --model ./SmolLM2-135M-Instruct.Q4_1.gguf --data selection --template chat
    """
    import yaml

    from resetkit.store import Store, write_text_atomic
    from resetkit.threads import apply_threads

    from . import launch

    apply_threads(threads, processes=nproc or 1)  # per process; launched workers inherit OMP_NUM_THREADS
    from .recipes import PLAN_FILE, make_plan
    from .worker import read_plan

    store = Store(store_dir)
    for key, value in (("save_total_limit", save_total_limit), ("template", template),
                       ("system_prompt", system_prompt)):
        if value is not None:      # JSON-quoted: a system prompt with ': ' stays a string
            overrides = (*overrides, f"{key}={json.dumps(value) if key == 'system_prompt' else value}")
    plan = make_plan(recipe, store=store, model=model, data=data, overrides=overrides, output=output,
                     deepspeed=deepspeed)
    out = Path(plan["output_dir"])
    plan_path = out / PLAN_FILE
    exists = _existing_run(out, plan)
    if resume:
        if not exists:
            raise ResetkitError(f"--resume: no training run in {out} (no {PLAN_FILE} or checkpoint) to continue")
        if plan_path.is_file():
            old = read_plan(plan_path)
            _check_same_plan(old, plan)
            plan = old
    elif exists:
        raise ResetkitError(f"{out} already holds a training run: pass --resume to continue it, "
                            "or choose another --output")

    multi = nproc is not None or hostfile is not None
    cmd = launch.launcher_command(plan_path, nproc=nproc, hostfile=hostfile, launcher=launcher,
                                  resume=resume) if multi else None
    if dry_run:
        click.echo(yaml.safe_dump(plan, sort_keys=False), nl=False)
        if cmd:
            click.echo("# command: " + launch.format_command(cmd))
        return
    out.mkdir(parents=True, exist_ok=True)
    if not (resume and plan_path.is_file()):
        write_text_atomic(plan_path, yaml.safe_dump(plan, sort_keys=False))
    if cmd:
        click.echo("+ " + launch.format_command(cmd), err=True)
        rc = launch.run_command(cmd)
        if rc:
            raise click.ClickException(f"training exited with status {rc}")
        click.echo(f"model and card: {Path(plan['stages'][-1]['config']['output_dir'])}")
        return
    if any(st["deepspeed_config"] for st in plan["stages"]):
        # DeepSpeed wants a process group even for one rank; the plain Trainer runs without one
        launch.single_process_env()
    from resetkit import runlog

    from .worker import log_path, run_plan

    with runlog.capture(log_path(plan), header=f"resetkit train {recipe}") as con:
        con.echo(f"[resetkit] log: {con.log_path or 'terminal (RESETKIT_VERBOSE)'}")
        results = run_plan(plan, resume=resume)
    final = Path(plan["stages"][-1]["config"]["output_dir"])
    if results:
        r = results[-1]
        click.echo(f"done: {r['global_step']} steps, best eval loss {r['best_eval_loss']:.4f}, "
                   f"model and card in {final}")
    else:
        click.echo(f"nothing left to do: every stage in {out} is finished")
