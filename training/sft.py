"""Supervised fine-tuning over resetkit datasets with transformers' Trainer under DeepSpeed.

Inputs: an :class:`SFTConfig` (one training stage) and a :class:`~resetkit.store.Store`.
Output: ``cfg.output_dir`` holding the best model (by evaluation loss), its tokenizer, the
``checkpoint-N`` folders, ``training_results.json`` and, written by :mod:`training.model_card`,
a README.md naming the exact dataset versions and the base model.

Why this shape: the paper (A.3) trains every model the same way — 1 epoch, lr 1e-5 (8e-6 for
the continued RESET fine-tune), effective batch 16 for faithfulness-only data and 32 when
instruction data is in, bf16, max length 2048, weight decay 0.05, cosine schedule with 3 %
warm-up, checkpoint + perplexity evaluation every 100 steps, the best checkpoint kept, DeepSpeed
ZeRO-3.  Those are the defaults below; the recipes in ``training/configs/`` only change data,
batch size and learning rate.  The loss covers response tokens only (prompt labels are -100)
and every response ends with EOS so the model learns to stop; examples in the model's chat
template (``template``, :mod:`training.chat` and :mod:`resetkit.chat`) end with the template's end-of-turn token instead
and train only the assistant turn.  Of the checkpoints, the best and the last are kept
(``save_total_limit`` 2).

Light functions (config, data checks, tokenisation) import no torch; :func:`train` imports
torch / transformers / deepspeed when it runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from pathlib import Path

from resetkit.chat import IGNORE_INDEX  # the chat path's too: one value
from resetkit.config import field
from resetkit.errors import ResetkitError

REQUIRED_COLUMNS = ("prompt", "response")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")


@dataclasses.dataclass(frozen=True)
class SFTConfig:
    """One supervised fine-tuning stage. Defaults are the paper's A.3 settings."""

    model: str = field("", help="Base model: a local folder (config.json + weights) or a Hub id.")
    data: tuple[str, ...] = field(default_factory=tuple, help=(
        "Training datasets in the store (NAME or NAME@VERSION), each with `prompt` and `response` "
        "columns; their `train` splits are concatenated."))
    output_dir: str = field("outputs/run", help="Where the model, checkpoints, config and model card go.")
    deepspeed: str = field("zero3", help=(
        "DeepSpeed config: a shipped name (zero3, zero2, zero3-offload, zero2-offload), a JSON path, "
        "or 'none' for plain Trainer without DeepSpeed."))
    num_train_epochs: float = field(1.0, help="Epochs over the training data (paper: a single epoch).")
    max_steps: int = field(-1, help="Stop after this many optimiser steps (-1: run the epochs).")
    learning_rate: float = field(1e-5, help="Peak learning rate (paper: 1e-5; 8e-6 for the continued RESET fine-tune).")
    batch_size: int = field(16, help=(
        "Effective (global) batch size = per-device batch x world size x gradient accumulation "
        "(paper: 16 faithfulness-only, 32 with instruction data)."))
    per_device_batch_size: int = field(4, help="Micro-batch per process; gradient accumulation makes up the rest.")
    per_device_eval_batch_size: int = field(0, help="Evaluation micro-batch per process (0: same as training).")
    max_length: int = field(2048, help="Maximum tokens per example (prompt + response + EOS); longer ones are cut on the right.")
    weight_decay: float = field(0.05, help="AdamW weight decay (paper: 0.05).")
    lr_scheduler_type: str = field("cosine", help="Learning-rate schedule (paper: cosine).")
    warmup_ratio: float = field(0.03, help="Fraction of steps spent warming up linearly (paper: 0.03).")
    max_grad_norm: float = field(1.0, help="Gradient clipping norm.")
    save_steps: int = field(100, help="Save a checkpoint every N steps (paper: 100).")
    eval_steps: int = field(100, help="Evaluate loss/perplexity on the evaluation set every N steps (paper: 100).")
    logging_steps: int = field(10, help="Log the training loss every N steps.")
    save_total_limit: int = field(2, help=(
        "Keep at most N checkpoints, deleting the oldest; the best (by evaluation loss) and the newest are "
        "always kept, so 2 (the default) keeps exactly the best and the last. 0 keeps all. A ZeRO-3 "
        "checkpoint holds the optimiser state: ~2 GB for a 135M model, ~80 GB for 7B."))
    load_best_model_at_end: bool = field(True, help="Finish with the checkpoint of lowest evaluation loss (paper: best by perplexity).")
    precision: str = field("auto", help="auto (bf16 where the hardware has it, else fp32), bf16, fp16 or fp32.")
    seed: int = field(42, help="Seed for initialisation, shuffling and the held-out split (paper: 3 seeds averaged).")
    eval_split: str = field("validation", help="Split used for evaluation when a dataset has it.")
    eval_fraction: float = field(0.05, help=(
        "When a dataset has no evaluation split: the seeded fraction of its train rows held out for evaluation."))
    max_eval_examples: int = field(0, help="Evaluate on at most N examples (seeded sample; 0: all).")
    max_train_examples: int = field(0, help="Train on at most N examples (seeded sample; 0: all). For smoke runs.")
    upsample: bool = field(False, help=(
        "With several training datasets: repeat the smaller ones (seeded) up to the largest's size, as the "
        "paper's MTL mixing does. The `mtl` corpus is already mixed, so recipes leave this off."))
    group_by_length: bool = field(False, help="Batch examples of similar length together (less padding).")
    packing: bool = field(False, help=(
        "Padding-free batches: each micro-batch is flattened into one sequence with restarting position ids "
        "(DataCollatorWithFlattening); the attention keeps examples apart."))
    gradient_checkpointing: bool = field(False, help="Recompute activations in the backward pass to save memory.")
    dataloader_num_workers: int = field(0, help="Data-loading worker processes.")
    template: str = field("auto", help=(
        "How an example becomes tokens. chat: the model's own chat template (user message, or the "
        "already rendered chat prompt of a pool/selection, then the response and the end-of-turn token; "
        "only the assistant turn is trained); plain: prompt + response + EOS as stored (the paper's "
        "Alpaca/Vicuna prompts); auto (default): chat for rows whose `template` column is 'chat', "
        "plain otherwise."))
    system_prompt: str = field("", help="chat template: the system message for user-message prompts (default: none).")


# -- light helpers (no torch) -------------------------------------------------------------------


def check_config(cfg: SFTConfig) -> None:
    """Raise a ResetkitError for values the Trainer would reject later, or with a worse message."""
    if cfg.precision not in PRECISIONS:
        raise ResetkitError(f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    for name in ("batch_size", "per_device_batch_size", "max_length", "save_steps", "eval_steps", "logging_steps"):
        if getattr(cfg, name) < 1:
            raise ResetkitError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    from .chat import TEMPLATES

    if cfg.template not in TEMPLATES:
        raise ResetkitError(f"template must be one of {', '.join(TEMPLATES)}, got {cfg.template!r}")
    if cfg.save_total_limit < 0:
        raise ResetkitError(f"save_total_limit must be 0 (keep all) or more, got {cfg.save_total_limit}")
    if not 0 < cfg.eval_fraction < 1:
        raise ResetkitError(f"eval_fraction must be in (0, 1), got {cfg.eval_fraction}")
    if cfg.load_best_model_at_end and cfg.save_steps % cfg.eval_steps:
        raise ResetkitError(f"save_steps ({cfg.save_steps}) must be a multiple of eval_steps ({cfg.eval_steps}) "
                            "to keep the best checkpoint")
    if not cfg.data:
        raise ResetkitError("no training data: pass --data DATASET (a store dataset with prompt and response)")


def batch_layout(batch_size: int, per_device: int, world_size: int) -> tuple[int, int]:
    """(per-device micro-batch, gradient accumulation steps) that make up the effective batch exactly.

    The micro-batch shrinks when the world is larger than the effective batch allows; a batch the
    world cannot divide is an error rather than a silently different batch size.
    """
    per_device = max(1, min(per_device, batch_size // max(world_size, 1)))
    if batch_size % (per_device * world_size):
        raise ResetkitError(f"effective batch {batch_size} is not a multiple of per-device batch {per_device} x "
                            f"world size {world_size}; change batch_size or per_device_batch_size")
    return per_device, batch_size // (per_device * world_size)


def check_datasets(store, refs) -> list:
    """Resolve dataset refs and check each has a ``train`` split with prompt/response columns.

    Returns the DatasetVersions (pinned). Reads only Parquet schemas: no torch import.
    """
    from resetkit.schemas import check_columns

    out = []
    for ref in refs:
        version = store.resolve(ref)
        splits = version.splits
        if "train" not in splits:
            raise ResetkitError(f"dataset {version.ref} has no 'train' split (splits: {', '.join(splits) or 'none'})")
        check_columns(version.schema, REQUIRED_COLUMNS, f"training dataset {version.ref}",
                      str(splits["train"][0]))
        out.append(version)
    return out


def _seeded_sample(n: int, k: int, seed: int) -> list[int]:
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return sorted(idx[:k])


def split_rows(version, cfg: SFTConfig) -> tuple[list[dict], list[dict], str]:
    """Train and evaluation rows (prompt, response) of one dataset version, plus where eval came from.

    The dataset's ``eval_split`` is used when present; otherwise a seeded ``eval_fraction`` of the
    train rows is held out (at least one row, and only when two or more rows exist).
    """
    cols = list(REQUIRED_COLUMNS) + (["template"] if "template" in version.schema.names else [])
    train = version.read("train", columns=cols).to_pylist()
    if cfg.eval_split in version.splits and version.num_rows().get(cfg.eval_split, 1) > 0:
        evals = version.read(cfg.eval_split, columns=cols).to_pylist()
        if evals:
            return train, evals, f"{version.ref} split {cfg.eval_split}"
    if len(train) < 2:
        raise ResetkitError(f"dataset {version.ref} has {len(train)} train row(s) and no {cfg.eval_split!r} "
                            "split: not enough rows to hold some out for evaluation")
    k = max(1, round(len(train) * cfg.eval_fraction))
    held = set(_seeded_sample(len(train), k, cfg.seed))
    evals = [r for i, r in enumerate(train) if i in held]
    train = [r for i, r in enumerate(train) if i not in held]
    return train, evals, f"{version.ref} train, seeded {cfg.eval_fraction:g} held out ({k} rows, seed {cfg.seed})"


def upsample_to(rows: list[dict], n: int, seed: int) -> list[dict]:
    """Repeat ``rows`` whole, then a seeded sample of the remainder, to reach ``n`` rows."""
    if not rows or len(rows) >= n:
        return list(rows)
    full, rest = divmod(n, len(rows))
    return list(rows) * full + [rows[i] for i in _seeded_sample(len(rows), rest, seed)]


def load_rows(store, cfg: SFTConfig) -> tuple[list[dict], list[dict], dict]:
    """All train and eval rows for ``cfg`` with per-dataset statistics for the model card."""
    versions = check_datasets(store, cfg.data)
    parts, evals, stats = [], [], {"datasets": []}
    for v in versions:
        train, ev, eval_source = split_rows(v, cfg)
        parts.append(train)
        evals.extend(ev)
        stats["datasets"].append({"ref": v.ref, "name": v.name, "version": v.version, "train_rows": len(train),
                                  "eval_rows": len(ev), "eval_source": eval_source,
                                  "parents": [f"{p['name']}@{p['version']}" for p in v.manifest.get("parents", [])]})
    if cfg.upsample and len(parts) > 1:
        target = max(len(p) for p in parts)
        parts = [upsample_to(p, target, cfg.seed + i) for i, p in enumerate(parts)]
        for d, p in zip(stats["datasets"], parts):
            d["train_rows_upsampled"] = len(p)
    train = [r for p in parts for r in p]
    if cfg.max_train_examples and len(train) > cfg.max_train_examples:
        train = [train[i] for i in _seeded_sample(len(train), cfg.max_train_examples, cfg.seed)]
    if cfg.max_eval_examples and len(evals) > cfg.max_eval_examples:
        evals = [evals[i] for i in _seeded_sample(len(evals), cfg.max_eval_examples, cfg.seed + 1)]
    bad = [i for i, r in enumerate(train) if not isinstance(r["prompt"], str) or not isinstance(r["response"], str)]
    if bad:
        raise ResetkitError(f"{len(bad)} training row(s) have a null prompt or response (first at row {bad[0]} "
                            f"of the concatenated train data of {', '.join(cfg.data)})")
    evals = [r for r in evals if isinstance(r["prompt"], str) and isinstance(r["response"], str)]
    if not train or not evals:
        raise ResetkitError(f"nothing to train on: {len(train)} train and {len(evals)} evaluation rows")
    stats.update(train_rows=len(train), eval_rows=len(evals))
    return train, evals, stats


def tokenize_example(tokenizer, prompt: str, response: str, max_length: int) -> dict | None:
    """Token ids and labels for one example; the loss sees only response tokens and the final EOS.

    The prompt is tokenised alone (with the tokenizer's BOS etc.), exactly as it is at generation
    time, and the response (without special tokens) plus EOS is appended.  Prompt positions get
    label -100.  Too long: cut on the right to ``max_length``; None when no response token is left.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is None:
        raise ResetkitError("the tokenizer has no EOS token: cannot teach the model to stop")
    response_ids = list(response_ids) + [tokenizer.eos_token_id]
    full = len(prompt_ids) + len(response_ids)
    input_ids = (list(prompt_ids) + response_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + response_ids)[:max_length]
    if all(t == IGNORE_INDEX for t in labels):
        return None
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels,
            "length": len(input_ids), "truncated": full > max_length}


def tokenize_rows(tokenizer, rows: list[dict], max_length: int, *, template: str = "plain",
                  system_prompt: str = "") -> tuple[list[dict], dict]:
    """Tokenise rows; returns the features and counts (kept, truncated, dropped, tokens, chat rows).

    ``template``: see SFTConfig.template (chat rows go through :class:`resetkit.chat.ChatFormat`)."""
    from resetkit.chat import ChatFormat

    from .chat import uses_chat

    feats, truncated, dropped, tokens, response_tokens, chat_rows = [], 0, 0, 0, 0, 0
    chat = None
    for r in rows:
        if uses_chat(template, r.get("template")):
            chat = chat or ChatFormat(tokenizer, system_prompt)
            f = chat.example(r["prompt"], r["response"], max_length)
            chat_rows += 1
        else:
            f = tokenize_example(tokenizer, r["prompt"], r["response"], max_length)
        if f is None:
            dropped += 1
            continue
        truncated += f.pop("truncated")
        tokens += f["length"]
        response_tokens += sum(1 for t in f["labels"] if t != IGNORE_INDEX)
        feats.append(f)
    return feats, {"examples": len(feats), "truncated": truncated, "dropped_prompt_too_long": dropped,
                   "tokens": tokens, "response_tokens": response_tokens, "chat_template_rows": chat_rows}


def kept_checkpoints(output_dir: str | Path, best: str | None = None) -> list[dict]:
    """The checkpoint folders left in ``output_dir`` (oldest first), marking the best and the last."""
    found = sorted((int(p.name.split("-")[1]), p.name) for p in Path(output_dir).glob("checkpoint-*")
                   if p.is_dir() and p.name.split("-")[1].isdigit())
    best_name = Path(best).name if best else None
    return [{"name": name, "step": step, "best": name == best_name, "last": i == len(found) - 1}
            for i, (step, name) in enumerate(found)]


def describe_checkpoints(kept: list[dict], limit: int) -> str:
    """``kept checkpoint-6 (best), checkpoint-8 (last); ...`` for the console and the card."""
    if not kept:
        return "no checkpoint kept"
    names = ", ".join(c["name"] + (f" ({'best, last' if c['best'] and c['last'] else 'best' if c['best'] else 'last'})"
                                   if c["best"] or c["last"] else "") for c in kept)
    rule = (f"older ones deleted (save_total_limit={limit}: the best and the newest are always kept; "
            "0 keeps all)" if limit else "all kept (save_total_limit=0)")
    return f"kept {names}; {rule}"


def has_checkpoint(output_dir: str | Path) -> bool:
    return any(p.is_dir() for p in Path(output_dir).glob("checkpoint-*"))


def load_deepspeed_config(spec: str) -> dict | None:
    """A shipped config by name (``zero3``), a JSON path, or None for 'none'."""
    if spec in ("", "none", None):
        return None
    here = Path(__file__).parent / "deepspeed"
    path = here / f"{spec}.json" if (here / f"{spec}.json").is_file() else Path(spec)
    if not path.is_file():
        from resetkit.registry import suggest

        names = sorted(p.stem for p in here.glob("*.json"))
        raise ResetkitError(f"unknown DeepSpeed config {spec!r}.{suggest(spec, names)} "
                            f"Shipped: {', '.join(names)}; or pass a JSON file path, or 'none'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ResetkitError(f"{path}: invalid JSON: {exc}") from exc
    if not isinstance(data, dict) or "zero_optimization" not in data:
        raise ResetkitError(f"{path}: not a DeepSpeed config (no 'zero_optimization' section)")
    return data


# -- the heavy part ------------------------------------------------------------------------------


def _precision(spec: str) -> str:
    import torch

    if spec != "auto":
        return spec
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def _make_trainer_class():
    from transformers import Trainer

    class PerplexityTrainer(Trainer):
        """Trainer that logs perplexity = exp(loss) next to every evaluation and training loss."""

        def log(self, logs, start_time=None):
            for key in ("eval_loss", "loss", "train_loss"):
                if key in logs and logs[key] is not None and math.isfinite(logs[key]):
                    name = key.replace("loss", "perplexity")
                    logs[name] = math.exp(min(logs[key], 700.0))
            return super().log(logs, start_time)

    return PerplexityTrainer


def _console_callback():
    """The run's one progress bar (training steps, with the latest loss) and a line per evaluation,
    on the console of :mod:`resetkit.runlog`; the Trainer's own bars are off."""
    from transformers import TrainerCallback

    from resetkit import runlog

    class ConsoleProgress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kw):
            if state.is_world_process_zero:
                self.bar = runlog.current().progress(total=state.max_steps, initial=state.global_step,
                                                     desc="train", unit="step")

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is None or not logs:
                return
            if "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            if "eval_loss" in logs:
                line = f"step {state.global_step}: eval loss {logs['eval_loss']:.4f}"
                if "eval_perplexity" in logs:
                    line += f", perplexity {logs['eval_perplexity']:.4g}"
                self.bar.write(line, file=runlog.progress_file())
                runlog.current().to_log(line)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return ConsoleProgress()


def train(cfg: SFTConfig, store, *, resume: bool = False, callbacks=()) -> dict:
    """Run one stage; returns the results dict also written to ``training_results.json``.

    Expects the distributed environment (RANK, WORLD_SIZE, ...) to be set by the launcher or by
    :func:`training.launch.single_process_env`.  With ``resume`` the Trainer continues from the
    newest ``checkpoint-N`` in ``cfg.output_dir`` (model, optimiser, scheduler, RNG and data order).
    """
    check_config(cfg)
    train_rows, eval_rows, stats = load_rows(store, cfg)
    ds_config = load_deepspeed_config(cfg.deepspeed)

    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, TrainingArguments

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    per_device, accum = batch_layout(cfg.batch_size, cfg.per_device_batch_size, world_size)
    precision = _precision(cfg.precision)
    use_cpu = not torch.cuda.is_available()

    tokenizer = AutoTokenizer.from_pretrained(cfg.model)           # saved with the model as it came
    collate_tok = AutoTokenizer.from_pretrained(cfg.model, padding_side="right")
    if collate_tok.pad_token_id is None:
        # labels are padded with -100 by the collator, so reusing EOS for padding never trains on it
        collate_tok.pad_token = collate_tok.eos_token
    fmt = {"template": cfg.template, "system_prompt": cfg.system_prompt}
    train_feats, train_tok_stats = tokenize_rows(tokenizer, train_rows, cfg.max_length, **fmt)
    eval_feats, eval_tok_stats = tokenize_rows(tokenizer, eval_rows, cfg.max_length, **fmt)
    if not train_feats or not eval_feats:
        raise ResetkitError(f"no example fits max_length={cfg.max_length} with a response token left "
                            f"(train {train_tok_stats}, eval {eval_tok_stats})")
    stats.update(train_tokens=train_tok_stats, eval_tokens=eval_tok_stats)

    args = TrainingArguments(
        output_dir=cfg.output_dir,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size or per_device,
        gradient_accumulation_steps=accum,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,   # a float in [0, 1) is a ratio of the total steps (transformers 5)
        max_grad_norm=cfg.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit or None,
        load_best_model_at_end=cfg.load_best_model_at_end,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        deepspeed=ds_config,
        use_cpu=use_cpu,
        report_to="none",
        gradient_checkpointing=cfg.gradient_checkpointing,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name="length",
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=cfg.dataloader_num_workers,
        disable_tqdm=True,    # one bar on the console instead (_console_callback)
    )
    # Set up torch.distributed now (gloo on CPU, nccl on GPU): ZeRO-3's partitioned loading below
    # sizes its shards by the world size, which it can only read from an initialised group.
    _ = args.device
    if ds_config:
        import deepspeed

        deepspeed.init_distributed()
    # TrainingArguments came first so that, under ZeRO-3, from_pretrained partitions the weights
    # as it loads them (deepspeed.zero.Init) instead of materialising the full model per process.
    # DeepSpeed keeps fp32 master weights itself, so its bf16 runs load bf16 weights; the plain
    # Trainer's mixed precision wants fp32 weights under autocast.
    dtype = torch.bfloat16 if precision == "bf16" and ds_config else torch.float32
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False

    if cfg.packing:
        from transformers import DataCollatorWithFlattening

        collator = DataCollatorWithFlattening(separator_id=IGNORE_INDEX)
    else:
        collator = DataCollatorForSeq2Seq(collate_tok, padding=True, label_pad_token_id=IGNORE_INDEX,
                                          pad_to_multiple_of=8 if not use_cpu else None)
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(train_feats),
                          eval_dataset=Dataset.from_list(eval_feats), data_collator=collator,
                          processing_class=tokenizer, callbacks=[_console_callback(), *callbacks])
    resumed_from = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint

        resumed_from = get_last_checkpoint(cfg.output_dir)
        if resumed_from is None:
            raise ResetkitError(f"--resume: no checkpoint-N folder in {cfg.output_dir} to continue from")
    out = trainer.train(resume_from_checkpoint=resumed_from)
    trainer.save_model(cfg.output_dir)   # the best checkpoint's weights when load_best_model_at_end
    state = trainer.state
    evals = [h for h in state.log_history if "eval_loss" in h]
    final_eval = trainer.evaluate()      # of the weights just saved: equals the best eval loss
    results = {
        "global_step": state.global_step,
        "train_loss": out.training_loss,
        "train_runtime_s": out.metrics.get("train_runtime"),
        "train_tokens_seen": state.num_input_tokens_seen,
        "best_model_checkpoint": state.best_model_checkpoint,
        "best_eval_loss": state.best_metric,
        "final_eval_loss": final_eval.get("eval_loss"),
        "final_eval_perplexity": final_eval.get("eval_perplexity"),
        "evaluations": [{"step": h["step"], "eval_loss": h["eval_loss"], "eval_perplexity": h.get("eval_perplexity")}
                        for h in evals],
        "resumed_from": resumed_from,
        "save_total_limit": cfg.save_total_limit,
        "checkpoints_kept": kept_checkpoints(cfg.output_dir, state.best_model_checkpoint),
        "world_size": world_size,
        "per_device_batch_size": per_device,
        "gradient_accumulation_steps": accum,
        "effective_batch_size": per_device * accum * world_size,
        "precision": precision,
        "device": "cuda" if not use_cpu else "cpu",
        "deepspeed_zero_stage": (ds_config or {}).get("zero_optimization", {}).get("stage"),
        "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated() if not use_cpu else None,
        "data": stats,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "deepspeed": _version("deepspeed")},
    }
    if trainer.is_world_process_zero():
        from resetkit.store import write_text_atomic

        write_text_atomic(Path(cfg.output_dir) / "training_results.json",
                          json.dumps(results, indent=2, default=str) + "\n")
    return results


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None
