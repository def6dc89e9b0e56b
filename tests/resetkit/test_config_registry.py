from __future__ import annotations

from dataclasses import dataclass

import pytest

from resetkit.config import build, describe, field, load_yaml, parse_overrides
from resetkit.errors import ResetkitError
from resetkit.registry import Registry


@dataclass(frozen=True)
class Cfg:
    lr: float = field(1e-5, help="learning rate")
    steps: int = field(10, help="steps")
    name: str = field("x", help="a name")
    flag: bool = field(False, help="a flag")


def test_layers_and_coercion(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("lr: 2.0e-5\nsteps: 5\n")
    top = tmp_path / "top.yaml"
    top.write_text("include: base.yaml\nname: top\n")
    preset = load_yaml(top)
    assert preset == {"lr": 2e-5, "steps": 5, "name": "top"}
    cfg = build(Cfg, preset, parse_overrides(["steps=7", "flag=true"]))
    assert (cfg.lr, cfg.steps, cfg.name, cfg.flag) == (2e-5, 7, "top", True)
    assert [d[0] for d in describe(Cfg)] == ["lr", "steps", "name", "flag"]


def test_unknown_key_suggests():
    with pytest.raises(ResetkitError, match="Did you mean 'steps'"):
        build(Cfg, {"step": 3})
    with pytest.raises(ResetkitError, match="cannot read"):
        build(Cfg, {"steps": "many"})
    with pytest.raises(ResetkitError, match="key=value"):
        parse_overrides(["novalue"])


def test_registry_lazy_and_suggest():
    reg = Registry("judge", {"json": "json:dumps", "rouge": "no.such.module:x"})
    assert reg.get("json")({"a": 1}) == '{"a": 1}'
    with pytest.raises(ResetkitError, match="Did you mean 'rouge'"):
        reg.get("rogue")


# -- plugin options (--set KIND.NAME.FIELD=VALUE) ------------------------------------------------

import dataclasses  # noqa: E402

from resetkit.config import check_plugin_sets, field, parse_sets, plugin_options  # noqa: E402


class ToyPlugin:
    @dataclasses.dataclass(frozen=True)
    class Options:
        size: int = field(3, help="how big")
        label: str = field("x", help="a label")


class BarePlugin:
    pass


TOYS = Registry("toy", {"toy": f"{__name__}:ToyPlugin", "bare": f"{__name__}:BarePlugin"})


def test_parse_sets_groups_by_kind_and_plugin():
    got = parse_sets(["toy.toy.size=5", "toy.toy.label=hello world", "judge.em.x=true"], ("toy", "judge"))
    assert got == {"toy": {"toy": {"size": 5, "label": "hello world"}}, "judge": {"em": {"x": True}}}


@pytest.mark.parametrize("item, words", [("toy.toy=1", "KIND.NAME.FIELD"), ("tyo.toy.size=1", "Did you mean 'toy'"),
                                         ("toy.toy.a.b=1", "KIND.NAME.FIELD")])
def test_parse_sets_rejects_bad_keys(item, words):
    with pytest.raises(ResetkitError, match=words):
        parse_sets([item], ("toy",))


def test_plugin_options_layers_and_errors():
    opts = plugin_options(TOYS, "toy", {"size": 4}, {"label": "y"})
    assert (opts.size, opts.label) == (4, "y")
    assert dataclasses.asdict(plugin_options(TOYS, "bare")) == {}
    with pytest.raises(ResetkitError, match=r"toy 'toy': unknown config key 'sise'.*'size'"):
        plugin_options(TOYS, "toy", {"sise": 1})
    with pytest.raises(ResetkitError, match="cannot read 'big' as int"):
        plugin_options(TOYS, "toy", {"size": "big"})
    with pytest.raises(ResetkitError, match="unknown toy 'tyo'"):
        check_plugin_sets(TOYS, {"tyo": {}})
    check_plugin_sets(TOYS, {"toy": {"size": 1}})
