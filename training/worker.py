"""Run a written training plan: ``python -m training.worker OUTPUT/resetkit-train.yaml [--resume]``.

This is what every process runs, whether started by ``resetkit train`` itself (one process), by
the ``deepspeed`` launcher or by ``torchrun``.  Stages run in order; a stage whose output already
holds ``training_results.json`` and its README.md is finished and skipped on ``--resume``; the
others continue from their newest checkpoint when they have one.  Rank 0 writes the model cards.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import yaml

from resetkit.errors import ResetkitError


def read_plan(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ResetkitError(f"training plan not found: {path}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def stage_done(stage: dict) -> bool:
    out = Path(stage["config"]["output_dir"])
    return (out / "training_results.json").is_file() and (out / "README.md").is_file()


def log_path(plan: dict) -> Path:
    """The run's log file: OUTPUT/resetkit-train.log (rank 0), resetkit-train.rankN.log (others)."""
    rank = int(os.environ.get("RANK", "0"))
    return Path(plan["output_dir"]) / ("resetkit-train.log" if rank == 0 else f"resetkit-train.rank{rank}.log")


def run_plan(plan: dict, *, resume: bool = False) -> list[dict]:
    """Train every stage of ``plan``; returns the per-stage results."""
    from resetkit import runlog
    from resetkit.store import Store, write_text_atomic

    from .model_card import render_model_card
    from .recipes import stage_config
    from .sft import has_checkpoint, train

    # torch.distributed's deprecation notes fire on every ZeRO step and bury the training log
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.distributed.*")
    con = runlog.current()
    store = Store(plan["store"])
    rank = int(os.environ.get("RANK", "0"))
    out = []
    for i, stage in enumerate(plan["stages"]):
        if stage_done(stage):
            if not resume:
                raise ResetkitError(f"stage {stage['name']} is already trained in {stage['config']['output_dir']}")
            con.echo(f"[resetkit] stage {i + 1} {stage['name']}: already done, skipped")
            continue
        cfg = stage_config(stage)
        stage_resume = resume and has_checkpoint(cfg.output_dir)
        if rank == 0:
            con.echo(f"[resetkit] stage {i + 1}/{len(plan['stages'])} {stage['name']}: {cfg.model} on "
                     f"{', '.join(cfg.data)} -> {cfg.output_dir}" + (" (resuming)" if stage_resume else ""))
        results = train(cfg, store, resume=stage_resume)
        if rank == 0:
            card = render_model_card(plan, i, results)
            write_text_atomic(Path(cfg.output_dir) / "README.md", card)
            if len(plan["stages"]) > 1 and i == len(plan["stages"]) - 1:
                note = (f"> The final model of this two-stage run is in `{Path(cfg.output_dir).name}/`; "
                        "each stage folder has its own card.\n\n")
                write_text_atomic(Path(plan["output_dir"]) / "README.md", note + card)
        out.append(results)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from resetkit import runlog

    try:
        plan = read_plan(args.plan)
        with runlog.capture(log_path(plan)) as con:
            if int(os.environ.get("RANK", "0")) == 0:
                con.echo(f"[resetkit] log: {con.log_path or 'terminal (RESETKIT_VERBOSE)'}")
            run_plan(plan, resume=args.resume)
    except ResetkitError as exc:
        print(f"Error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
