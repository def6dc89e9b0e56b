"""Every shipped recipe and DeepSpeed config is loaded and validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resetkit.errors import ResetkitError
from training.recipes import CONFIGS, load_recipe, make_plan, recipe_names
from training.sft import SFTConfig, batch_layout, load_deepspeed_config

DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "training" / "deepspeed"
PAPER = {"cd", "if", "mtl", "reset", "reset-s", "cd-then-if", "if-then-cd"}


def test_the_papers_recipes_ship():
    assert PAPER <= set(recipe_names())
    assert not any(n.startswith("_") for n in recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_resolves_to_a_complete_plan(name, train_store, tiny_llama, tmp_path):
    """Every shipped recipe (the registry: training/configs/*.yaml); the paper's keep A.3's settings."""
    plan = make_plan(name, store=train_store, model=str(tiny_llama), output=str(tmp_path / name))
    assert plan["recipe"] == name and plan["base_model"] == str(tiny_llama)
    assert load_recipe(name).get("description")
    for stage in plan["stages"]:
        cfg = stage["config"]
        assert set(cfg) == set(SFTConfig.__dataclass_fields__)
        # every dataset is pinned to the exact version that exists in the store
        for ref in cfg["data"]:
            name_, _, version = ref.partition("@")
            assert train_store.resolve(ref).version == version and train_store.resolve(name_).version == version
        if name not in PAPER:
            continue
        # paper A.3 settings
        assert cfg["num_train_epochs"] == 1 and cfg["max_length"] == 2048 and cfg["weight_decay"] == 0.05
        assert cfg["lr_scheduler_type"] == "cosine" and cfg["warmup_ratio"] == 0.03
        assert cfg["save_steps"] == cfg["eval_steps"] == 100 and cfg["load_best_model_at_end"]
        assert cfg["deepspeed"] == "zero3" and stage["deepspeed_config"]["zero_optimization"]["stage"] == 3
        assert cfg["precision"] == "auto"
        faithfulness_only = stage["recipe"] == "cd"
        assert cfg["batch_size"] == (16 if faithfulness_only else 32)
        assert cfg["learning_rate"] == (8e-6 if stage["recipe"] in ("reset", "reset-s") else 1e-5)


@pytest.mark.parametrize("name,order", [("cd-then-if", ["cd", "if"]), ("if-then-cd", ["if", "cd"])])
def test_two_stage_recipes_chain_the_best_checkpoint(name, order, train_store, tiny_llama, tmp_path):
    plan = make_plan(name, store=train_store, model=str(tiny_llama), output=str(tmp_path),
                     data=[f"{order[0]}={order[0]}-train"], overrides=[f"{order[1]}.learning_rate=2e-5", "seed=7"])
    first, second = plan["stages"]
    assert [first["name"], second["name"]] == order
    assert first["config"]["model"] == str(tiny_llama)
    assert second["config"]["model"] == first["config"]["output_dir"] == str(tmp_path / f"stage1-{order[0]}")
    assert second["starts_from"] == order[0]
    assert first["config"]["data"][0].startswith(f"{order[0]}-train@")
    assert second["config"]["data"][0].startswith(f"{order[1]}-train@")
    assert second["config"]["learning_rate"] == 2e-5 and first["config"]["learning_rate"] == 1e-5
    assert first["config"]["seed"] == second["config"]["seed"] == 7


def test_reset_s_includes_reset(train_store, tiny_llama, tmp_path):
    raw = load_recipe("reset-s")
    assert raw["learning_rate"] == 8e-6 and raw["data"] == ["selection-s"]
    assert "include" not in raw


def test_recipe_with_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("include: " + str(CONFIGS / "cd.yaml") + "\nlearnig_rate: 1.0e-4\n")
    with pytest.raises(ResetkitError, match="learnig_rate.*Did you mean 'learning_rate'"):
        load_recipe(str(bad))


def test_own_recipe_file_with_include(train_store, tiny_llama, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("include: " + str(CONFIGS / "reset.yaml") + "\nbatch_size: 8\n")
    plan = make_plan(str(mine), store=train_store, model=str(tiny_llama), output=str(tmp_path / "o"))
    cfg = plan["stages"][0]["config"]
    assert cfg["batch_size"] == 8 and cfg["learning_rate"] == 8e-6 and cfg["data"][0].startswith("selection@")


# -- DeepSpeed configs -----------------------------------------------------------------------------

# the "auto" keys transformers' Trainer fills in (integrations/deepspeed.py)
TRAINER_FILLS = {
    "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size", "gradient_clipping",
    "optimizer.params.lr", "optimizer.params.betas", "optimizer.params.eps", "optimizer.params.weight_decay",
    "bf16.enabled", "fp16.enabled", "zero_optimization.reduce_bucket_size",
    "zero_optimization.stage3_prefetch_bucket_size", "zero_optimization.stage3_param_persistence_threshold",
}


def _autos(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _autos(v, f"{prefix}{k}.")
        elif v == "auto":
            yield prefix + k


def _fill(d, values, prefix=""):
    return {k: (_fill(v, values, f"{prefix}{k}.") if isinstance(v, dict)
                else values[prefix + k] if v == "auto" else v) for k, v in d.items()}


def test_deepspeed_configs_ship():
    names = {p.stem for p in DEEPSPEED_DIR.glob("*.json")}
    assert {"zero3", "zero2", "zero3-offload", "zero2-offload"} <= names


@pytest.mark.parametrize("name", sorted(p.stem for p in DEEPSPEED_DIR.glob("*.json")))
def test_deepspeed_config_is_valid(name):
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = load_deepspeed_config(name)
    assert cfg == json.loads((DEEPSPEED_DIR / f"{name}.json").read_text())
    stage = 3 if name.startswith("zero3") else 2
    assert cfg["zero_optimization"]["stage"] == stage
    assert set(_autos(cfg)) <= TRAINER_FILLS, "an 'auto' the Trainer cannot fill"
    if stage == 3:   # save_model must write consolidated weights, or the output folder has none
        assert cfg["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    offload = "offload" in name
    assert ("offload_optimizer" in cfg["zero_optimization"]) == offload
    # the DeepSpeed-side optimizer is needed only for offload (DeepSpeedCPUAdam); otherwise the
    # Trainer's AdamW is used, which needs zero_allow_untested_optimizer
    assert ("optimizer" in cfg) == offload or cfg.get("zero_allow_untested_optimizer")
    micro, accum = batch_layout(32, 4, 1)
    filled = _fill(cfg, {"train_micro_batch_size_per_gpu": micro, "gradient_accumulation_steps": accum,
                         "train_batch_size": 32, "gradient_clipping": 1.0, "optimizer.params.lr": 1e-5,
                         "optimizer.params.betas": [0.9, 0.999], "optimizer.params.eps": 1e-8,
                         "optimizer.params.weight_decay": 0.05, "bf16.enabled": True, "fp16.enabled": False,
                         "zero_optimization.reduce_bucket_size": 4096,
                         "zero_optimization.stage3_prefetch_bucket_size": 3686,
                         "zero_optimization.stage3_param_persistence_threshold": 640})
    parsed = DeepSpeedConfig(filled)   # DeepSpeed's own parser and pydantic validation
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_batch_size == 32 and parsed.gradient_accumulation_steps == accum
    assert parsed.bfloat16_config.enabled


def test_deepspeed_by_path_and_unknown_name(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    assert load_deepspeed_config(str(p))["zero_optimization"]["stage"] == 1
    assert load_deepspeed_config("none") is None
    with pytest.raises(ResetkitError, match="Did you mean 'zero3'"):
        load_deepspeed_config("zero33")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResetkitError, match="invalid JSON"):
        load_deepspeed_config(str(tmp_path / "bad.json"))


def test_batch_layout():
    assert batch_layout(32, 4, 1) == (4, 8)
    assert batch_layout(16, 4, 8) == (2, 1)     # 8 GPUs: the micro-batch shrinks to keep 16
    assert batch_layout(32, 4, 8) == (4, 1)     # the paper's 8xA100 with batch 32
    with pytest.raises(ResetkitError, match="not a multiple"):
        batch_layout(16, 4, 3)
