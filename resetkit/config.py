"""Configs: frozen dataclasses with a help string per field, YAML presets, ``key=value`` overrides.

Precedence: dataclass defaults < YAML preset (``include:`` supported) < command line.
The resolved config (``asdict``) goes into the manifest and the data card.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .errors import ResetkitError
from .registry import suggest


def field(default=dataclasses.MISSING, *, help: str, default_factory=dataclasses.MISSING):
    """A dataclass field with a help string (shown in --help and in cards)."""
    kw: dict[str, Any] = {"metadata": {"help": help}}
    if default_factory is not dataclasses.MISSING:
        kw["default_factory"] = default_factory
    else:
        kw["default"] = default
    return dataclasses.field(**kw)


def run_field(default=dataclasses.MISSING, *, help: str, default_factory=dataclasses.MISSING):
    """A config field that changes how a run goes (server URL, batch size, workers...), never
    what it produces: kept out of the version id, recorded in the manifest's ``run``."""
    f = field(default, help=help, default_factory=default_factory)
    f.metadata = types.MappingProxyType({**f.metadata, "execution": True})
    return f


def execution_fields(cls) -> tuple[str, ...]:
    """The names of ``cls``'s fields made with :func:`run_field`."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("execution"))


def split_run_fields(cfg) -> tuple[dict, dict]:
    """(what a dataclass config produces, how it runs): its fields as a dict, split by
    :func:`run_field`."""
    run = set(execution_fields(type(cfg)))
    d = to_dict(cfg)
    return {k: v for k, v in d.items() if k not in run}, {k: v for k, v in d.items() if k in run}


def load_yaml(path: str | Path) -> dict:
    """Read a YAML preset; ``include: other.yaml`` (relative to the file) is merged underneath."""
    path = Path(path)
    if not path.is_file():
        raise ResetkitError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ResetkitError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ResetkitError(f"{path}: expected a mapping at the top level")
    includes = data.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    merged: dict = {}
    for inc in includes:
        merged.update(load_yaml(path.parent / inc))
    merged.update(data)
    return merged


def parse_overrides(items) -> dict:
    """``["lr=1e-5", "name=x"]`` -> ``{"lr": 1e-05, "name": "x"}`` (values parsed as YAML scalars)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ResetkitError(f"expected key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def value_type(typ: Any) -> Any:
    """``X`` for an optional field's ``X | None`` (or ``Optional[X]``); any other type as it is."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return typ


def _coerce(name: str, value: Any, typ: Any) -> Any:
    if value is None:
        return None
    typ = value_type(typ)  # ``float | None``: read as float
    origin = getattr(typ, "__origin__", None)
    try:
        if typ is float or typ == "float":
            return float(value)
        if typ is int and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1"):
                    return True
                if value.lower() in ("false", "no", "0"):
                    return False
                raise ValueError
            return bool(value)
        if typ is str:
            return str(value)
        if origin in (list, tuple) and not isinstance(value, (list, tuple)):
            value = [value]
        if origin is tuple:
            return tuple(value)
    except (TypeError, ValueError):
        raise ResetkitError(
            f"config key {name!r}: cannot read {value!r} as {getattr(typ, '__name__', typ)}") from None
    return value


def build(cls, *layers: dict | None):
    """Instantiate dataclass ``cls`` from layered dicts (later wins); unknown keys are errors."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls)
    values: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key not in names:
                raise ResetkitError(f"unknown config key {key!r} for {cls.__name__}.{suggest(key, names)}")
            values[key] = _coerce(key, value, hints.get(key))
    try:
        return cls(**values)
    except TypeError as exc:
        raise ResetkitError(f"{cls.__name__}: {exc}") from exc


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def describe(cls) -> list[tuple[str, Any, str]]:
    """(name, default, help) per field, for --help texts and cards."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out.append((f.name, default, f.metadata.get("help", "")))
    return out


# -- plugin options: ``--set KIND.NAME.FIELD=VALUE`` -------------------------------------------
# A plugin (judge, backend, ...) declares its own frozen ``Options`` dataclass (fields made with
# ``field(..., help=...)``); a stage config keeps stage-level fields and one mapping of options per
# plugin.  On the command line: ``--set judge.summac.model=./nli`` (the prefix is the registry's kind).


def parse_sets(items, kinds) -> dict[str, dict[str, dict]]:
    """``["judge.summac.model=x"]`` -> ``{"judge": {"summac": {"model": "x"}}}``.

    ``kinds`` are the accepted prefixes (registry kinds: "judge", "backend"); values are YAML
    scalars as in :func:`parse_overrides`.  Plugin and field names are checked later, by
    :func:`plugin_options`, against the registry and the plugin's ``Options``."""
    out: dict[str, dict[str, dict]] = {}
    for item in items or ():
        key = item.partition("=")[0].strip()
        kind, _, rest = key.partition(".")
        name, _, fname = rest.partition(".")
        if not (kind and name and fname) or "." in fname:
            raise ResetkitError(f"--set {item!r}: expected KIND.NAME.FIELD=VALUE, e.g. "
                                f"{next(iter(kinds), 'judge')}.NAME.FIELD=VALUE")
        if kind not in kinds:
            raise ResetkitError(f"--set {item!r}: unknown kind {kind!r}.{suggest(kind, kinds)} "
                                f"Known here: {', '.join(kinds)}")
        value = parse_overrides([f"{fname}={item.partition('=')[2]}"] if "=" in item else [item])
        out.setdefault(kind, {}).setdefault(name, {}).update(value)
    return out


def options_class(registry, name: str):
    """The ``Options`` dataclass of plugin ``name`` (an empty one where it declares none)."""
    return getattr(registry.get(name), "Options", _NoOptions)


def plugin_options(registry, name: str, *layers: dict | None):
    """Build plugin ``name``'s ``Options`` from layered dicts (later wins); unknown plugin names
    and unknown fields are one clear error naming the plugin (did-you-mean)."""
    cls = options_class(registry, name)
    try:
        return build(cls, *layers)
    except ResetkitError as exc:
        raise ResetkitError(f"{registry.kind} {name!r}: {exc}") from None


def check_plugin_sets(registry, sets: dict[str, dict] | None) -> None:
    """Every plugin named in ``sets`` (one kind's part of :func:`parse_sets`) is registered."""
    for name, values in (sets or {}).items():
        registry.check(name)
        plugin_options(registry, name, values)


@dataclasses.dataclass(frozen=True)
class _NoOptions:
    pass
