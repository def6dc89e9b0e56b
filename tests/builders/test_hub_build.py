"""`resetkit build` with no --source: every source with a Hub id is downloaded from a Hub, here
the local fake Hub (tests/helpers/fake_hub.py) on 127.0.0.1, through the real huggingface_hub
client (HF_ENDPOINT pointing at it, HF_HUB_OFFLINE=0 and a private HF_HOME in these tests
only, in a fresh process each).

The repos are laid out as the real ones are (file names, folders, configs, card YAML):

- databricks/databricks-dolly-15k: ``databricks-dolly-15k.jsonl`` at the root, a card
  without ``configs`` (every data file is the train split);
- OpenAssistant/oasst1: ``data/{train,validation}-00000-of-00001-<hash>.parquet`` plus the
  ``2023-04-12_oasst_*.jsonl.gz`` exports beside them (not part of the default config);
- LLMs/Alpaca-ShareGPT: one JSON array ``alpaca_sharedgpt_data.json`` and a helper script;
- yizhongw/self_instruct: a loading script and a card on main (no data files); the data is
  in the Hub's Parquet conversion (``refs/convert/parquet``: ``self_instruct/train/0000.parquet``
  next to the other configs' folders);
- microsoft/ms_marco: ``v1.1/`` and ``v2.1/`` folders, the card's ``configs`` naming them;
- abisee/cnn_dailymail: ``1.0.0/`` and ``3.0.0/`` folders with ``configs`` in the card;
- tatsu-lab/alpaca: ``data/train-00000-of-00001-<hash>.parquet``;
- HuggingFaceH4/Koala-test-set: one JSONL file; d0rj/wikisum: ``data/*-*.parquet``.

Their content is the committed samples (builders/samples), so a build from the Hub must give
exactly the rows of a build from the local samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from builders.corpora import sample_sources
from builders.samples.make_samples import HERE
from resetkit.store import Store
from tests.helpers.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _csv_table(path: Path) -> pa.Table:
    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        strings_can_be_null=False, column_types={n: pa.string() for n in ("id", "input", "text")}),
        read_options=pcsv.ReadOptions(block_size=1 << 20), parse_options=pcsv.ParseOptions(newlines_in_values=True))


def _hub_labels(row: dict) -> dict:
    """An OASST-1 message of the JSONL export ({"quality": {"value", "count"}} labels) in the
    Hub Parquet's shape (labels as lists: name, value, count)."""
    labels = row.get("labels")
    if isinstance(labels, dict) and "name" not in labels:
        labels = {"name": list(labels), "value": [v["value"] for v in labels.values()],
                  "count": [v["count"] for v in labels.values()]}
    return {**row, "labels": labels}


def card(configs: dict[str, dict[str, str]] | None = None, extra: str = "license: other\n") -> bytes:
    """A dataset card with a YAML header; ``configs`` maps config -> {split: path glob}."""
    yaml = extra
    if configs:
        yaml += "configs:\n"
        for name, splits in configs.items():
            yaml += f"- config_name: {name}\n  data_files:\n"
            yaml += "".join(f"  - split: {s}\n    path: {p}\n" for s, p in splits.items())
    return f"---\n{yaml}---\n# Dataset card\n".encode()


def populate(hub: FakeHub) -> dict[str, str]:
    """The Hub repos of every source with a Hub id; returns repo -> commit of its data."""
    s = HERE
    marco_schema = pq.read_schema(s / "ms_marco" / "train.parquet")
    oasst_schema = pq.read_schema(s / "oasst1" / "train.parquet")
    marco = {split: _parquet(pa.Table.from_pylist(_jsonl(s / "ms_marco" / f"{split}.jsonl"), schema=marco_schema))
             for split in ("validation", "test")}
    marco["train"] = (s / "ms_marco" / "train.parquet").read_bytes()
    v11 = pq.read_table(s / "ms_marco" / "train.parquet")
    v11 = v11.set_column(v11.schema.get_field_index("query"), "query",
                         pa.array([f"v1.1 only {i}" for i in range(v11.num_rows)]))
    cnn = {split: _parquet(_csv_table(s / "cnn_dailymail" / f"{split}.csv")) for split in ("train", "validation", "test")}
    commits = {}
    commits["databricks/databricks-dolly-15k"] = hub.add_dataset("databricks/databricks-dolly-15k", {
        "README.md": card(extra="license: cc-by-sa-3.0\ntask_categories:\n- question-answering\n"),
        "databricks-dolly-15k.jsonl": (s / "dolly.jsonl").read_bytes()})
    commits["OpenAssistant/oasst1"] = hub.add_dataset("OpenAssistant/oasst1", {
        "README.md": card({"default": {"train": "data/train-*", "validation": "data/validation-*"}}),
        "data/train-00000-of-00001-b42a775f407cee45.parquet": (s / "oasst1" / "train.parquet").read_bytes(),
        "data/validation-00000-of-00001-134b8fd0c89408b6.parquet":
            _parquet(pa.Table.from_pylist([_hub_labels(r) for r in _jsonl(s / "oasst1" / "validation.jsonl")],
                                          schema=oasst_schema)),
        "2023-04-12_oasst_all.messages.jsonl.gz": b"not read: not in the default config",
        "2023-04-12_oasst_ready.trees.jsonl.gz": b"not read either"})
    commits["LLMs/Alpaca-ShareGPT"] = hub.add_dataset("LLMs/Alpaca-ShareGPT", {
        "README.md": b"---\nlicense: apache-2.0\n---\n", "convert-alpaca.py": b"# the uploader's script\n",
        "alpaca_sharedgpt_data.json": (s / "sharegpt.json").read_bytes()})
    hub.add_dataset("yizhongw/self_instruct", {
        "README.md": b"---\nlicense: apache-2.0\ndataset_info:\n- config_name: self_instruct\n- config_name: human_eval\n---\n",
        "self_instruct.py": b"# a loading script: datasets no longer runs these\n"})
    repo = hub.repos["datasets/yizhongw/self_instruct"]
    other = [{"prompt": "Not this config.\n\nOutput:", "completion": " no<|endoftext|>"}]
    export = repo.new_commit(repo.branches["main"], {
        "self_instruct/train/0000.parquet": _parquet(pa.Table.from_pylist(_jsonl(s / "self_instruct.jsonl"))),
        "human_eval/train/0000.parquet": _parquet(pa.Table.from_pylist(other))}, "Update parquet files")
    repo.branches["refs/convert/parquet"] = commits["yizhongw/self_instruct"] = export
    commits["microsoft/ms_marco"] = hub.add_dataset("microsoft/ms_marco", {
        "README.md": card({c: {split: f"{c}/{split}-*" for split in ("validation", "train", "test")}
                           for c in ("v1.1", "v2.1")}),
        "v1.1/train-00000-of-00001.parquet": _parquet(v11),
        "v1.1/validation-00000-of-00001.parquet": _parquet(v11.slice(0, 2)),
        **{f"v2.1/{split}-00000-of-00001.parquet": data for split, data in marco.items()}})
    commits["abisee/cnn_dailymail"] = hub.add_dataset("abisee/cnn_dailymail", {
        "README.md": card({c: {split: f"{c}/{split}-*" for split in ("train", "validation", "test")}
                           for c in ("1.0.0", "3.0.0")}),
        **{f"{c}/{split}-00000-of-00001.parquet": data for split, data in cnn.items() for c in ("1.0.0", "3.0.0")}})
    commits["tatsu-lab/alpaca"] = hub.add_dataset("tatsu-lab/alpaca", {
        "README.md": card({"default": {"train": "data/train-*"}}),
        "data/train-00000-of-00001-a09b74b3ef9c3b56.parquet": _parquet(_csv_table(s / "alpaca.csv"))})
    commits["HuggingFaceH4/Koala-test-set"] = hub.add_dataset("HuggingFaceH4/Koala-test-set", {
        "README.md": b"---\nlicense: apache-2.0\n---\n", "koala_test_set.jsonl": (s / "koala_test_set.jsonl").read_bytes()})
    commits["d0rj/wikisum"] = hub.add_dataset("d0rj/wikisum", {
        "README.md": card(), **{f"data/{split}-00000-of-00001-abc.parquet":
                                _parquet(pa.Table.from_pylist(_jsonl(s / "wikisum" / f"{split}.jsonl")))
                                for split in ("train", "validation", "test")}})
    return commits


@pytest.fixture(scope="module")
def hub():
    with FakeHub(token="hf_notUsedForReads") as fake:
        fake.commits_of = populate(fake)
        yield fake


SPY = """
import json, sys
from builders.sources import columnar
real, calls = columnar.read_split, []
def spy(*args):
    table = real(*args)
    calls.append(table is not None)
    return table
columnar.read_split = spy
from resetkit.cli import main
try:
    main(sys.argv[2:], prog_name="resetkit", standalone_mode=True)
finally:
    open(sys.argv[1], "w").write(json.dumps(calls))
"""


def build(args: list[str], hub: FakeHub, tmp_path: Path, *, offline: bool = False) -> tuple[int, str, list]:
    """``resetkit build ARGS`` in a fresh process against the fake Hub; returns (exit code,
    output, [whether each split columnar.read_split was asked for took the columnar path])."""
    env = {**{k: v for k, v in os.environ.items() if k not in OFFLINE_VARS},
           "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1" if offline else "0",
           "HF_DATASETS_OFFLINE": "1" if offline else "0", "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    spy = tmp_path / "columnar-calls.json"
    proc = subprocess.run([sys.executable, "-c", SPY, str(spy), "build", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr, json.loads(spy.read_text()) if spy.exists() else []


def rows_of(version, split: str, source: str) -> list[dict]:
    return [r for r in version.read(split).to_pylist() if r["source"] == source]


def test_if_train_from_the_hub_equals_the_local_build(hub, tmp_path):
    store = Store(tmp_path / "store")
    code, out, columnar_calls = build(["if-train", "--store", str(store.root), "--no-progress"], hub, tmp_path)
    assert code == 0, out
    # every split takes the columnar path: dolly, oasst1 train and validation (Parquet on the Hub),
    # sharegpt, self_instruct
    assert columnar_calls == [True] * 5
    v = store.resolve("if-train")
    local = _local_build(tmp_path, "if-train")
    for split in ("train", "validation"):
        assert v.read(split).to_pylist() == local.read(split).to_pylist()
    inputs = v.manifest["inputs"]
    assert inputs["self_instruct"] == {"repo": "yizhongw/self_instruct", "config": "self_instruct",
                                       "revision": hub.commits_of["yizhongw/self_instruct"]}
    assert inputs["dolly"]["revision"] == hub.commits_of["databricks/databricks-dolly-15k"]
    downloaded = {r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path}
    assert not any("oasst_all" in p or "human_eval" in p or p.endswith(".py") for p in downloaded)
    assert "Hub `yizhongw/self_instruct`" in (v.path / "README.md").read_text()

    # offline now: the same files from the Hub cache, the same version
    code, out, _ = build(["if-train", "--store", str(tmp_path / "store2"), "--no-progress"], hub, tmp_path, offline=True)
    assert code == 0, out
    assert Store(tmp_path / "store2").resolve("if-train").version == v.version


def _local_build(tmp_path: Path, corpus: str, name: str | None = None):
    from builders.corpora import build_corpus

    store = Store(tmp_path / "local")
    return build_corpus(store, corpus, sample_sources(corpus), name=name or corpus)


def test_cd_train_reads_ms_marco_v2_1_and_cnn_3_0_0_only(hub, tmp_path):
    store = Store(tmp_path / "store")
    nq = sample_sources("cd-train")["nq"]
    code, out, _ = build(["cd-train", "--store", str(store.root), "--source", f"nq={nq}", "--no-progress"],
                         hub, tmp_path)
    assert code == 0, out
    v = store.resolve("cd-train")
    local = _local_build(tmp_path, "cd-train")
    for split in ("train", "validation", "test"):
        for source in ("ms_marco", "cnn_dailymail"):
            assert rows_of(v, split, source) == rows_of(local, split, source)
    assert not any("v1.1" in (r["question"] or "") for r in rows_of(v, "train", "ms_marco"))
    assert v.manifest["inputs"]["ms_marco"]["config"] == "v2.1"
    downloaded = {r.path.rsplit("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests
                  if r.method == "GET" and "/resolve/" in r.path and "ms_marco" in r.path}
    assert downloaded == {"README.md", "v2.1/train-00000-of-00001.parquet",
                          "v2.1/validation-00000-of-00001.parquet", "v2.1/test-00000-of-00001.parquet"}


def test_eval_corpora_from_the_hub(hub, tmp_path):
    store = Store(tmp_path / "store")
    local = sample_sources("if-eval") | sample_sources("cd-eval")
    for corpus, args in (("if-train", []), ("if-eval", ["--source", f"vicuna={local['vicuna']}"]),
                         ("cd-eval", ["--source", f"bioasq={local['bioasq']}", "--source", f"searchqa={local['searchqa']}"])):
        code, out, _ = build([corpus, "--store", str(store.root), "--no-progress", *args], hub, tmp_path)
        assert code == 0, out
    from builders.corpora import build_corpus

    ref = Store(tmp_path / "local")
    build_corpus(ref, "if-train", sample_sources("if-train"))
    for corpus, sources in (("if-eval", ("alpaca", "koala")), ("cd-eval", ("wikisum",))):
        expected = build_corpus(ref, corpus, sample_sources(corpus))
        for source in sources:
            assert rows_of(store.resolve(corpus), "test", source) == rows_of(expected, "test", source) != []


def test_offline_without_a_cache_suggests_only_and_source(hub, tmp_path):
    code, out, _ = build(["if-train", "--store", str(tmp_path / "s")], hub, tmp_path, offline=True)
    assert code == 2 and "Traceback" not in out
    assert "cannot load dolly from the Hub id 'databricks/databricks-dolly-15k'" in out
    assert "--source dolly=PATH" in out and "--only NAME" in out


def test_unknown_repo_and_config_are_one_line(hub, tmp_path):
    code, out, _ = build(["if-train", "--store", str(tmp_path / "s"), "--source", "dolly=nobody/nothing"], hub, tmp_path)
    assert code == 2 and "Traceback" not in out
    assert "cannot load dolly from the Hub id 'nobody/nothing' (repository not found" in out
    code, out, _ = build(["cd-train", "--store", str(tmp_path / "s"), "--source", "nq=" + sample_sources("cd-train")["nq"],
                          "--source", "ms_marco=microsoft/ms_marco:v3.0"], hub, tmp_path)
    assert code == 2 and "Traceback" not in out
    assert "no config 'v3.0' (its configs: v1.1, v2.1)" in out


def test_fake_hub_answers_the_client_as_the_hub_does(hub, monkeypatch):
    """The routes the build does not exercise on every run, through the real client:
    paths-info, a tree below a folder, LFS metadata, a branch by name, and an anonymous read
    of a private repo."""
    import huggingface_hub.constants as constants
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    api = HfApi(endpoint=hub.endpoint, token=False)
    info = api.get_paths_info("microsoft/ms_marco", ["v2.1/train-00000-of-00001.parquet", "v2.1", "nope"],
                              repo_type="dataset")
    assert [(type(i).__name__, i.path) for i in info] == [("RepoFile", "v2.1/train-00000-of-00001.parquet"),
                                                         ("RepoFolder", "v2.1")]
    assert info[0].lfs is not None and len(info[0].lfs.sha256) == 64
    tree = [e.path for e in api.list_repo_tree("yizhongw/self_instruct", path_in_repo="self_instruct",
                                               revision="refs/convert/parquet", recursive=True, repo_type="dataset")]
    assert tree == ["self_instruct/train", "self_instruct/train/0000.parquet"]
    hub.add_dataset("someone/private-set", {"train.jsonl": b'{"a": 1}\n'}, public=False)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("someone/private-set")
