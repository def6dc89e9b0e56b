"""The model card (README.md) of a training output: base model, exact data versions, settings.

Inputs: the plan dict (:mod:`training.recipes`), the stage that produced the model, and the
stage's ``training_results.json`` dict.  Output: Markdown with a Hub YAML header
(``base_model`` when it is a Hub id, ``datasets``, ``tags``) and a body that names every dataset
as ``name@version`` (and their parent versions), the recipe, the resolved hyper-parameters, the
evaluation-loss curve and the chosen checkpoint — the lineage from store to weights.
"""

from __future__ import annotations

import re

import yaml

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _hub_id(model: str) -> str | None:
    return model if _HUB_ID.match(model) and not model.startswith((".", "/")) else None


def template_note(cfg: dict, tok: dict) -> str:
    """Which template the examples were rendered with (SFTConfig.template), in words."""
    chat = tok.get("chat_template_rows", 0)
    n = tok.get("examples", 0)
    setting = cfg.get("template", "plain")
    system = cfg.get("system_prompt") or ""
    chat_words = ("the model's own chat template (`chat`: the tokenizer's `apply_chat_template`, generation "
                  "prompt added; only the assistant turn, its end-of-turn token included, is in the loss)"
                  + (f", system prompt {system!r}" if system else ", no system prompt"))
    plain_words = "`plain`: the stored prompts as they are (e.g. the paper's Alpaca/Vicuna templates), then the response and EOS"
    if chat and chat >= n:
        return f"{chat_words}; all {chat:,} training examples (template setting `{setting}`)."
    if chat:
        return (f"mixed (template setting `{setting}`): {chat:,} of {n:,} training examples in {chat_words}; "
                f"the others {plain_words}.")
    return f"{plain_words} (template setting `{setting}`)."


def render_model_card(plan: dict, stage_index: int, results: dict) -> str:
    """Markdown card for the model written by ``plan["stages"][stage_index]``."""
    stage = plan["stages"][stage_index]
    cfg = stage["config"]
    chain = plan["stages"][: stage_index + 1]
    all_data = [ref for st in chain for ref in st["config"]["data"]]
    header = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["resetkit", "reset", f"recipe-{plan['recipe']}", "sft", "deepspeed"],
        "datasets": sorted({ref.split("@")[0] for ref in all_data}),
    }
    if _hub_id(plan["base_model"]):
        header["base_model"] = plan["base_model"]
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             f"# resetkit `{plan['recipe']}`" + (f" — stage {stage_index + 1} `{stage['name']}`"
                                                 if len(plan["stages"]) > 1 else ""), ""]
    if plan.get("description"):
        lines += [plan["description"].strip(), ""]
    if plan.get("paper"):
        lines += [f"Paper settings: {plan['paper']}", ""]
    lines += ["## Lineage", "", f"- Base model: `{plan['base_model']}`"
              + (f" (converted from GGUF to `{plan['base_model_folder']}`)" if plan.get("base_model_folder") else "")]
    for i, st in enumerate(chain):
        start = f"`{st['config']['model']}`" if i == 0 else f"the best checkpoint of stage `{chain[i - 1]['name']}`"
        refs = ", ".join(f"`{r}`" for r in st["config"]["data"])
        lines.append(f"- Stage {i + 1} `{st['name']}` (recipe `{st['recipe']}`): from {start}, trained on {refs}")
    lines += ["", "| dataset@version | train rows | eval rows | evaluation set | built from |",
              "|---|---:|---:|---|---|"]
    for d in results.get("data", {}).get("datasets", []):
        parents = ", ".join(f"`{p}`" for p in d.get("parents", [])) or "—"
        lines.append(f"| `{d['ref']}` | {d.get('train_rows_upsampled', d['train_rows']):,} | {d['eval_rows']:,} "
                     f"| {d['eval_source']} | {parents} |")
    lines += ["", f"Store: `{plan['store']}`. The exact plan is in `resetkit-train.yaml` next to this card.", ""]

    tok = results.get("data", {}).get("train_tokens", {})
    lines += ["## Training", "", "Prompt format: " + template_note(cfg, tok), "",
              f"Loss on response tokens only (prompt labels masked), EOS appended to every response. "
              f"{tok.get('examples', 0):,} training examples, {tok.get('tokens', 0):,} tokens "
              f"({tok.get('response_tokens', 0):,} in the loss); {tok.get('truncated', 0):,} cut at "
              f"max_length {cfg['max_length']}, {tok.get('dropped_prompt_too_long', 0):,} dropped "
              "(no response token left).", "",
              "| setting | value |", "|---|---|"]
    shown = {
        "effective batch size": f"{results.get('effective_batch_size')} (= {results.get('per_device_batch_size')} "
                                f"per device x {results.get('world_size')} processes x "
                                f"{results.get('gradient_accumulation_steps')} accumulation)",
        "learning rate": cfg["learning_rate"], "epochs": cfg["num_train_epochs"], "max steps": cfg["max_steps"],
        "schedule": f"{cfg['lr_scheduler_type']}, warm-up ratio {cfg['warmup_ratio']}",
        "weight decay": cfg["weight_decay"], "max length": cfg["max_length"],
        "precision": results.get("precision"),
        "DeepSpeed": f"{cfg['deepspeed']} (ZeRO stage {results.get('deepspeed_zero_stage')})",
        "save / eval every": f"{cfg['save_steps']} / {cfg['eval_steps']} steps", "seed": cfg["seed"],
        "device": results.get("device"), "steps done": results.get("global_step"),
        "resumed from": results.get("resumed_from") or "—",
        "versions": ", ".join(f"{k} {v}" for k, v in (results.get("versions") or {}).items()),
    }
    lines += [f"| {k} | {v} |" for k, v in shown.items()]
    if results.get("checkpoints_kept") is not None:
        from .sft import describe_checkpoints

        lines += ["", "Checkpoints: " + describe_checkpoints(results["checkpoints_kept"],
                                                           results.get("save_total_limit", 0)) + "."]
    lines += ["", "## Evaluation (perplexity on the held-out set)", ""]
    best = results.get("best_model_checkpoint")
    lines += [f"Kept checkpoint: `{best}` (lowest evaluation loss {results.get('best_eval_loss')})."
              if best else "Kept: the final weights (no best-checkpoint selection).", "",
              "| step | eval loss | perplexity |", "|---:|---:|---:|"]
    for e in results.get("evaluations", []):
        ppl = e.get("eval_perplexity")
        lines.append(f"| {e['step']} | {e['eval_loss']:.4f} | {ppl:.3f} |" if ppl is not None
                     else f"| {e['step']} | {e['eval_loss']:.4f} | |")
    lines += ["", "## Resolved configuration", "", "```yaml",
              yaml.safe_dump(cfg, sort_keys=True).rstrip(), "```", ""]
    return "\n".join(lines)
