"""The decoding grid (paper section 5.1): presets, custom YAML, seeded plans."""

from __future__ import annotations

import subprocess
import sys

import pytest

from builders.grid import candidate_seed, load_grid, parse_grid, plan_example, preset_names
from resetkit.errors import ResetkitError

PAPER_TEMPS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
PAPER_TOPK = [5, 10, 20, 50, 70, 90, 100]


def test_every_preset_parses():
    assert {"paper", "paper-s", "greedy"} <= set(preset_names())
    for name in preset_names():
        assert load_grid(name).per_example >= 1


def test_paper_grid_is_the_papers():
    grid = load_grid("paper")
    arms = {a.name: a for a in grid.arms}
    assert set(arms) == {"temperature", "top_k"} and grid.runs == 1 and grid.per_example == 7
    t = [list(s.values()) for s in arms["temperature"].settings()]
    assert [s["temperature"] for s in arms["temperature"].settings()] == PAPER_TEMPS
    assert all(s["top_k"] == 0 for s in arms["temperature"].settings()), t
    assert [s["top_k"] for s in arms["top_k"].settings()] == PAPER_TOPK
    assert all(s["temperature"] == 0.0 for s in arms["top_k"].settings())


def test_plan_one_seeded_arm_per_example_all_seven_values():
    grid = load_grid("paper")
    chosen = []
    for i in range(400):
        plan = plan_example(f"ex-{i}", grid, seed=0)
        assert [d.sample_index for d in plan] == list(range(7))
        assert len({d.arm for d in plan}) == 1
        arm = plan[0].arm
        chosen.append(arm)
        if arm == "temperature":
            assert [d.temperature for d in plan] == PAPER_TEMPS and not any(d.greedy for d in plan)
        else:
            assert [d.top_k for d in plan] == PAPER_TOPK and all(d.greedy for d in plan)
        assert len({d.seed for d in plan}) == 7
    share = chosen.count("temperature") / len(chosen)
    assert 0.4 < share < 0.6  # a fair coin per example
    assert plan_example("ex-1", grid, 0) == plan_example("ex-1", grid, 0)
    # another global seed changes seeds and some arm choices
    other = [plan_example(f"ex-{i}", grid, seed=1)[0].arm for i in range(400)]
    assert other != chosen
    assert plan_example("ex-1", grid, 1)[0].seed != plan_example("ex-1", grid, 0)[0].seed


def test_paper_s_two_runs_with_their_own_arm_choice():
    grid = load_grid("paper-s")
    assert grid.runs == 2 and grid.per_example == 14
    plans = [plan_example(f"ex-{i}", grid, 0) for i in range(50)]
    assert all([d.sample_index for d in p] == list(range(14)) for p in plans)
    assert all(len({d.seed for d in p}) == 14 for p in plans)
    assert any(p[0].arm != p[7].arm for p in plans) and any(p[0].arm == p[7].arm for p in plans)
    # the first run of paper-s is exactly the paper plan
    assert plans[3][:7] == plan_example("ex-3", load_grid("paper"), 0)


def test_greedy_preset_one_candidate():
    plan = plan_example("x", load_grid("greedy"), 0)
    assert len(plan) == 1 and plan[0].arm == "greedy" and plan[0].greedy and plan[0].temperature == 0


def test_topk_temperature_and_runs_overrides():
    grid = load_grid("paper").with_topk_temperature(0.7).with_runs(3)
    assert grid.per_example == 21
    topk = next(a for a in grid.arms if a.vary == "top_k")
    assert all(s["temperature"] == 0.7 for s in topk.settings())
    plans = [plan_example(f"e{i}", grid, 0) for i in range(20)]
    assert not any(d.greedy for p in plans for d in p)
    with pytest.raises(ResetkitError, match="topk-temperature"):
        load_grid("paper").with_topk_temperature(-1)


def test_seed_is_stable_across_processes():
    code = "from builders.grid import candidate_seed; print(candidate_seed(7, 'ex-9', 3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == candidate_seed(7, "ex-9", 3)
    assert 0 <= candidate_seed(7, "ex-9", 3) < 2**31


def test_custom_yaml_grid(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nchoose: all\narms:\n  hot: {temperature: [0.8, 1.0], top_p: 0.9}\n"
                    "  narrow: {top_k: [1, 3], temperature: 0.5}\n")
    grid = load_grid(str(path))
    plan = plan_example("e", grid, 0)
    assert [(d.arm, d.temperature, d.top_k, d.top_p) for d in plan] == [
        ("hot", 0.8, 0, 0.9), ("hot", 1.0, 0, 0.9), ("narrow", 0.5, 1, 1.0), ("narrow", 0.5, 3, 1.0)]
    assert [d.greedy for d in plan] == [False, False, True, False]  # top_k 1 is greedy


@pytest.mark.parametrize("text, message", [
    ("arms:\n  a: {temperature: [0.1], top_k: [5]}\n", "exactly one parameter must be a list"),
    ("arms:\n  a: {temprature: [0.1]}\n", "Did you mean 'temperature'"),
    ("arms:\n  a: {top_k: [-1]}\n", "top_k must be an integer"),
    ("arms:\n  a: {top_p: [1.5]}\n", "top_p must be in"),
    ("arms: {}\n", "non-empty mapping"),
    ("runs: 0\narms:\n  a: {temperature: [0.1]}\n", "runs must be"),
    ("arms:\n  a: {temperature: [0.1]}\n  b: {temperature: [0.1, 0.2]}\n", "same number of values"),
    ("armz: {}\n", "Did you mean 'arms'"),
])
def test_bad_grid_files_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ResetkitError, match=message) as info:
        load_grid(str(path))
    assert "bad.yaml" in str(info.value.message)


def test_unknown_preset_suggests():
    with pytest.raises(ResetkitError, match="Did you mean 'paper'"):
        load_grid("papr")
    with pytest.raises(ResetkitError, match="config file not found"):
        load_grid("missing.yaml")
    assert parse_grid({"arms": {"a": {"temperature": [0.0]}}}).per_example == 1
