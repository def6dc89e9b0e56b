"""Decoding grids (paper section 5.1, DESIGN.md section 6) and the per-example sampling plan.

A grid is a YAML file (presets in ``builders/configs/grids/``: ``paper``, ``paper-s``,
``greedy``) with named *arms*; in each arm exactly one parameter takes a list of values
and the others are fixed::

    name: paper
    runs: 1            # RESET-S samples twice: runs: 2
    choose: one        # per example and run, one seeded arm ("all": every arm)
    arms:
      temperature: {temperature: [0.1, ..., 0.7], top_k: 0, top_p: 1.0}
      top_k:       {top_k: [5, 10, ..., 100], temperature: 0.0, top_p: 1.0}

``plan_example(example_id, grid, seed)`` turns a grid into the list of decodings of one
example.  Everything is a pure function of (global seed, example id, run, sample index),
so a resumed or re-sharded run plans exactly the same candidates.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from resetkit.errors import ResetkitError

GRID_DIR = Path(__file__).parent / "configs" / "grids"
PARAMS = ("temperature", "top_k", "top_p")
DEFAULTS = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}


@dataclasses.dataclass(frozen=True)
class Decoding:
    """One planned candidate of one example: its arm, sampling parameters and seed."""

    arm: str
    temperature: float
    top_k: int          # 0 = top-k off
    top_p: float
    sample_index: int
    seed: int

    @property
    def greedy(self) -> bool:
        """True where the parameters reduce to greedy decoding (temperature 0 or top-k 1)."""
        return self.temperature == 0.0 or self.top_k == 1


@dataclasses.dataclass(frozen=True)
class Arm:
    name: str
    vary: str                      # the parameter that takes a list of values
    values: tuple
    fixed: tuple                   # ((param, value), ...) for the others

    def settings(self):
        fixed = dict(self.fixed)
        for v in self.values:
            yield {**DEFAULTS, **fixed, self.vary: v}


@dataclasses.dataclass(frozen=True)
class Grid:
    name: str
    arms: tuple[Arm, ...]
    runs: int = 1
    choose: str = "one"            # "one" seeded arm per example and run, or "all"

    def to_dict(self) -> dict:
        return {"name": self.name, "runs": self.runs, "choose": self.choose,
                "arms": {a.name: {a.vary: list(a.values), **dict(a.fixed)} for a in self.arms}}

    @property
    def per_example(self) -> int:
        """Candidates per example."""
        sizes = [len(a.values) for a in self.arms]
        per_run = sum(sizes) if self.choose == "all" else sizes[0]
        return per_run * self.runs

    def with_topk_temperature(self, temperature: float | None) -> "Grid":
        """Sample arms that vary top-k at ``temperature`` instead of the paper's greedy 0."""
        if temperature is None:
            return self
        if temperature < 0:
            raise ResetkitError(f"--topk-temperature must be >= 0, got {temperature}")
        arms = tuple(dataclasses.replace(a, fixed=tuple(sorted({**dict(a.fixed),
                                                                "temperature": float(temperature)}.items())))
                     if a.vary == "top_k" else a for a in self.arms)
        return dataclasses.replace(self, arms=arms)

    def with_runs(self, runs: int | None) -> "Grid":
        if runs is None:
            return self
        if runs < 1:
            raise ResetkitError(f"--runs must be >= 1, got {runs}")
        return dataclasses.replace(self, runs=int(runs))


def _check_value(where: str, param: str, value):
    if param == "top_k":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ResetkitError(f"{where}: top_k must be an integer >= 0 (0 = off), got {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResetkitError(f"{where}: {param} must be a number, got {value!r}")
    value = float(value)
    if param == "temperature" and value < 0:
        raise ResetkitError(f"{where}: temperature must be >= 0, got {value}")
    if param == "top_p" and not 0 < value <= 1:
        raise ResetkitError(f"{where}: top_p must be in (0, 1], got {value}")
    return value


def parse_grid(data: dict, where: str = "grid") -> Grid:
    """Validate a grid mapping (as loaded from YAML) and build a Grid; errors name the key."""
    from resetkit.registry import suggest

    unknown = set(data) - {"name", "runs", "choose", "arms", "description"}
    if unknown:
        key = sorted(unknown)[0]
        hint = suggest(key, ["name", "runs", "choose", "arms"])
        raise ResetkitError(f"{where}: unknown key {key!r}.{hint}")
    arms_data = data.get("arms")
    if not isinstance(arms_data, dict) or not arms_data:
        raise ResetkitError(f"{where}: 'arms' must be a non-empty mapping of arm name -> parameters")
    arms = []
    for arm_name, params in arms_data.items():
        at = f"{where}: arms.{arm_name}"
        if not isinstance(params, dict):
            raise ResetkitError(f"{at} must be a mapping of parameters")
        bad = [k for k in params if k not in PARAMS]
        if bad:
            raise ResetkitError(f"{at}: unknown parameter {bad[0]!r}.{suggest(bad[0], PARAMS)} "
                                f"Known: {', '.join(PARAMS)}")
        lists = [k for k, v in params.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise ResetkitError(f"{at}: exactly one parameter must be a list of values "
                                f"(found {len(lists)}: {', '.join(lists) or 'none'})")
        vary = lists[0]
        values = tuple(_check_value(f"{at}.{vary}", vary, v) for v in params[vary])
        if not values:
            raise ResetkitError(f"{at}.{vary}: empty list of values")
        fixed = tuple((k, _check_value(f"{at}.{k}", k, params[k]))
                      for k in PARAMS if k in params and k != vary)
        arms.append(Arm(str(arm_name), vary, values, fixed))
    choose = data.get("choose", "one")
    if choose not in ("one", "all"):
        raise ResetkitError(f"{where}: choose must be 'one' or 'all', got {choose!r}")
    if choose == "one" and len({len(a.values) for a in arms}) > 1:
        raise ResetkitError(f"{where}: with choose: one every arm needs the same number of values")
    runs = data.get("runs", 1)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ResetkitError(f"{where}: runs must be an integer >= 1, got {runs!r}")
    return Grid(name=str(data.get("name", where)), arms=tuple(arms), runs=runs, choose=choose)


def preset_names() -> list[str]:
    return sorted(p.stem for p in GRID_DIR.glob("*.yaml"))


def load_grid(name_or_path: str) -> Grid:
    """A preset name (``paper``, ``paper-s``, ``greedy``) or a path to a YAML grid file."""
    from resetkit.config import load_yaml
    from resetkit.registry import suggest

    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        if name_or_path not in preset_names():
            raise ResetkitError(f"unknown grid {name_or_path!r}.{suggest(name_or_path, preset_names())} "
                                f"Presets: {', '.join(preset_names())} (or a path to a YAML file)")
        path = GRID_DIR / f"{name_or_path}.yaml"
    return parse_grid(load_yaml(path), where=str(path))


def _draw(*parts) -> int:
    """A 63-bit integer derived from ``parts`` (stable across processes and platforms)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def candidate_seed(seed: int, example_id: str, sample_index: int) -> int:
    """The sampling seed of one candidate: a function of (global seed, example, sample index).

    Kept below 2**31 because some servers and engines take a signed 32-bit seed.
    """
    return _draw("candidate", seed, example_id, sample_index) % (2**31 - 1)


def choose_arm(grid: Grid, seed: int, example_id: str, run: int) -> int:
    """Index of the arm used for this example in this run (a seeded, uniform choice)."""
    return _draw("arm", seed, example_id, run) % len(grid.arms)


def plan_example(example_id: str, grid: Grid, seed: int) -> list[Decoding]:
    """Every decoding of one example, in sample_index order."""
    out: list[Decoding] = []
    for run in range(grid.runs):
        arms = grid.arms if grid.choose == "all" else (grid.arms[choose_arm(grid, seed, example_id, run)],)
        for arm in arms:
            for s in arm.settings():
                i = len(out)
                out.append(Decoding(arm=arm.name, temperature=float(s["temperature"]), top_k=int(s["top_k"]),
                                    top_p=float(s["top_p"]), sample_index=i,
                                    seed=candidate_seed(seed, example_id, i)))
    return out
