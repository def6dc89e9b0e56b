"""Training recipes: YAML presets in ``training/configs/`` turned into a resolved training plan.

A recipe is either one stage (top-level keys are :class:`training.sft.SFTConfig` fields) or
several (``stages:``, each naming another recipe plus its own ``set:`` overrides; stage k+1
starts from stage k's best checkpoint, the paper's two-stage paradigm §2.4).  ``include:``
merges another YAML underneath (:func:`resetkit.config.load_yaml`).  Keys ``description`` and
``paper`` document the preset and are not config.

Precedence: SFTConfig defaults < recipe YAML < a stage's ``set:`` < command line.

:func:`make_plan` returns a plain dict (written as ``<output>/resetkit-train.yaml``) with every
dataset pinned to ``name@version`` and every stage's config complete, so workers on other
machines, ``--resume`` and the model card all read the same thing.  Nothing here imports torch.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from resetkit.config import build, load_yaml, parse_overrides, to_dict
from resetkit.errors import ResetkitError
from resetkit.registry import suggest

from .sft import SFTConfig, check_config, check_datasets, load_deepspeed_config

CONFIGS = Path(__file__).parent / "configs"
DOC_KEYS = ("description", "paper")
PLAN_FILE = "resetkit-train.yaml"


def recipe_names() -> list[str]:
    """Shipped recipes (files starting with ``_`` are fragments for ``include:``)."""
    return sorted(p.stem for p in CONFIGS.glob("*.yaml") if not p.name.startswith("_"))


def recipe_path(name: str) -> Path:
    """A shipped recipe name, or a path to a YAML file; unknown names get a did-you-mean."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise ResetkitError(f"recipe file not found: {path}")
        return path
    path = CONFIGS / f"{name}.yaml"
    if name.startswith("_") or not path.is_file():
        raise ResetkitError(f"unknown recipe {name!r}.{suggest(name, recipe_names())} "
                            f"Recipes: {', '.join(recipe_names())}")
    return path


def load_recipe(name: str) -> dict:
    """The recipe's YAML (includes merged), checked: config keys must be SFTConfig fields."""
    path = recipe_path(name)
    data = load_yaml(path)
    fields = set(SFTConfig.__dataclass_fields__)
    if "stages" in data:
        stages = data["stages"]
        if not isinstance(stages, list) or not stages:
            raise ResetkitError(f"{path}: 'stages' must be a non-empty list")
        extra = set(data) - set(DOC_KEYS) - {"stages"}
        if extra:
            raise ResetkitError(f"{path}: a multi-stage recipe sets config per stage; unexpected key(s) "
                                f"{', '.join(sorted(extra))}")
        seen = set()
        for i, st in enumerate(stages, 1):
            if not isinstance(st, dict) or "recipe" not in st:
                raise ResetkitError(f"{path}: stage {i} needs 'recipe: NAME'")
            unknown = set(st) - {"name", "recipe", "set"}
            if unknown:
                raise ResetkitError(f"{path}: stage {i}: unknown key(s) {', '.join(sorted(unknown))}")
            sub = load_recipe(st["recipe"])
            if "stages" in sub:
                raise ResetkitError(f"{path}: stage {i} recipe {st['recipe']!r} has stages itself")
            name_ = st.get("name", st["recipe"])
            if name_ in seen:
                raise ResetkitError(f"{path}: two stages are named {name_!r}")
            seen.add(name_)
            for key in st.get("set") or {}:
                if key not in fields:
                    raise ResetkitError(f"{path}: stage {i}: unknown config key {key!r}.{suggest(key, fields)}")
        return data
    for key in set(data) - set(DOC_KEYS):
        if key not in fields:
            raise ResetkitError(f"{path}: unknown config key {key!r}.{suggest(key, fields)}")
    return data


def _config_part(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in DOC_KEYS}


def _split_data_args(data: list[str], stage_names: list[str]) -> dict[str, list[str]]:
    """``--data`` values per stage: plain refs for one stage, ``STAGE=REF`` for several."""
    out: dict[str, list[str]] = {}
    for item in data:
        stage, sep, ref = item.partition("=")
        if not sep:
            if len(stage_names) > 1:
                raise ResetkitError(f"this recipe has stages {', '.join(stage_names)}: give data per stage as "
                                    f"--data STAGE=DATASET (e.g. --data {stage_names[0]}={item})")
            stage, ref = stage_names[0], item
        elif stage not in stage_names:
            raise ResetkitError(f"--data {item}: no stage {stage!r}.{suggest(stage, stage_names)} "
                                f"Stages: {', '.join(stage_names)}")
        out.setdefault(stage, []).append(ref)
    return out


def _split_overrides(sets: dict, stage_names: list[str]) -> tuple[dict, dict[str, dict]]:
    """``--set key=v`` for every stage, ``--set STAGE.key=v`` for one."""
    common: dict = {}
    per: dict = {}
    for key, value in sets.items():
        stage, dot, sub = key.partition(".")
        if dot and stage in stage_names:
            per.setdefault(stage, {})[sub] = value
        else:
            common[key] = value
    return common, per


def make_plan(recipe: str, *, store, model: str | None = None, data=(), overrides=(), output: str | None = None,
              deepspeed: str | None = None) -> dict:
    """Resolve a recipe and the command line into a plan dict (datasets pinned, stages complete).

    Raises ResetkitError for an unknown recipe/key, a missing dataset or column, a bad DeepSpeed
    config, a missing model — all before any heavy import.
    """
    raw = load_recipe(recipe)
    rpath = recipe_path(recipe)
    name = rpath.stem
    output = str(Path(output or Path("outputs") / name).resolve())
    if "stages" in raw:
        stage_specs = [{"name": st.get("name", st["recipe"]), "recipe": st["recipe"], "set": st.get("set") or {}}
                       for st in raw["stages"]]
    else:
        stage_specs = [{"name": name, "recipe": None, "set": {}}]
    names = [s["name"] for s in stage_specs]
    data_by_stage = _split_data_args(list(data), names)
    common, per_stage = _split_overrides(parse_overrides(overrides), names)

    base_source = None
    if model is not None:
        model, base_source = resolve_gguf(model)
    stages = []
    for i, spec in enumerate(stage_specs):
        base = _config_part(load_recipe(spec["recipe"]) if spec["recipe"] else raw)
        cli: dict = dict(common)
        cli.update(per_stage.get(spec["name"], {}))
        if spec["name"] in data_by_stage:
            cli["data"] = data_by_stage[spec["name"]]
        if deepspeed is not None:
            cli["deepspeed"] = deepspeed
        multi = len(stage_specs) > 1
        cli["output_dir"] = str(Path(output) / f"stage{i + 1}-{spec['name']}") if multi else output
        if i == 0:
            if model is not None:
                cli["model"] = model
        else:
            # the paper's two-stage paradigm: stage two starts from stage one's best checkpoint
            cli["model"] = stages[-1]["config"]["output_dir"]
        cfg = build(SFTConfig, base, spec["set"], cli)
        check_config(cfg)
        if not cfg.model:
            raise ResetkitError("no base model: pass --model PATH_OR_HUB_ID")
        if i == 0:
            check_model(cfg.model)
        versions = check_datasets(store, cfg.data)
        ds = cfg.deepspeed
        ds_config = load_deepspeed_config(ds)
        if ds_config is not None and not (Path(__file__).parent / "deepspeed" / f"{ds}.json").is_file():
            ds = str(Path(ds).resolve())     # a user's JSON: absolute, so every worker finds it
        cfg_dict = to_dict(cfg)
        cfg_dict.update(data=[v.ref for v in versions], deepspeed=ds)
        stages.append({"name": spec["name"], "recipe": spec["recipe"] or name, "config": cfg_dict,
                       "deepspeed_config": ds_config,
                       "starts_from": stages[-1]["name"] if i else None})
    return {
        "resetkit_train": 1,
        "recipe": name,
        "recipe_file": str(rpath.resolve()),
        "description": raw.get("description", ""),
        "paper": raw.get("paper", ""),
        "store": str(store.root),
        "output_dir": output,
        "base_model": base_source or stages[0]["config"]["model"],
        **({"base_model_folder": stages[0]["config"]["model"]} if base_source else {}),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "stages": stages,
    }


def stage_config(stage: dict) -> SFTConfig:
    """The SFTConfig of one plan stage."""
    return build(SFTConfig, stage["config"])


def resolve_gguf(model: str) -> tuple[str, str | None]:
    """A ``.gguf`` file becomes its converted model folder (resetkit.models: converted once,
    cached by content); returns (what to load, the .gguf as given or None)."""
    from resetkit.models import is_gguf

    path = Path(model).expanduser()
    if not (path.is_file() and is_gguf(path)):
        return model, None
    from resetkit.models import resolve_model

    return resolve_model(model).path, str(path.resolve())


def check_model(model: str) -> None:
    """A local model folder must exist with a config.json; a Hub id must be cached when offline.

    Cheap (no torch): runs before any launch so a typo fails in milliseconds.
    """
    path = Path(model).expanduser()
    looks_local = model.startswith((".", "/", "~")) or path.exists() or model.count("/") > 1 or "\\" in model
    if looks_local:
        if not path.exists():
            raise ResetkitError(f"model path does not exist: {model}")
        if path.is_dir() and not (path / "config.json").is_file():
            raise ResetkitError(f"{model}: not a model folder (no config.json)")
        return
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise ResetkitError(f"model {model!r} is neither a local folder nor in the Hugging Face cache, "
                                "and HF_HUB_OFFLINE is set (model path does not exist)")
