"""transformers backend on a tiny random Llama built at test time: batching, seeds, greedy."""

from __future__ import annotations

import shutil

import pytest

from builders.backends.base import GenRequest
from builders.backends.transformers_backend import RowSampler, TransformersBackend
from resetkit.errors import ResetkitError

PROMPTS = ["The cat sat on the mat. Question: who sat on the mat? Answer:",
           "Water boils at 100 degrees Celsius at sea level. Summarize the text in a few sentences.",
           "Hi"]


def _requests(max_new=10):
    out = []
    for p, prompt in enumerate(PROMPTS):
        for i, (t, k) in enumerate([(0.0, 0), (0.3, 0), (0.7, 0), (0.0, 5), (0.7, 5), (1.0, 0)]):
            out.append(GenRequest(f"{p}-{i}", prompt, t, k, 0.9 if i == 5 else 1.0, 100 + i, max_new))
    return out


@pytest.fixture(scope="module")
def backend(tiny_llama):
    b = TransformersBackend(str(tiny_llama), batch_size=64)
    b.check()
    yield b
    b.close()


def test_greedy_rows_equal_plain_generate(backend, tiny_llama):
    """The shared-prefill batched path gives what one plain greedy generate() call gives."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    results = {r.key: r for r in backend.generate(_requests())}
    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    for p, prompt in enumerate(PROMPTS):
        ids = tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, do_sample=False, max_new_tokens=10, pad_token_id=tok.pad_token_id)
        # (a character cut at the length limit is dropped, as vLLM does)
        expected = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).rstrip("\ufffd")
        assert results[f"{p}-0"].text == expected
        assert results[f"{p}-3"].text == expected  # temperature 0 with top-k: still greedy


def test_results_do_not_depend_on_batch_composition(tiny_llama, backend):
    reqs = _requests()
    a = backend.generate(reqs)
    small = TransformersBackend(str(tiny_llama), batch_size=2, share_prefill=False)
    b = small.generate(list(reversed(reqs)))[::-1]
    alone = [small.generate([r])[0] for r in reqs[6:12]]
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a[6:12]] == [x.text for x in alone]
    assert all(x.num_tokens == 10 and x.finish_reason == "length" for x in a if x.finish_reason != "stop")


def test_seeds_reproduce_and_differ(backend):
    base = GenRequest("a", PROMPTS[0], 0.9, 0, 1.0, 1, 12)
    same = backend.generate([base, GenRequest("b", PROMPTS[0], 0.9, 0, 1.0, 1, 12)])
    assert same[0].text == same[1].text
    texts = {r.text for r in backend.generate([GenRequest(str(s), PROMPTS[0], 0.9, 0, 1.0, s, 12)
                                               for s in range(6)])}
    assert len(texts) >= 5  # a random model at T=0.9: different seeds, different texts


def test_eos_stops_with_finish_reason_stop(tiny_llama):
    import torch

    b = TransformersBackend(str(tiny_llama))
    first = b.generate([GenRequest("g", PROMPTS[1], 0.0, 0, 1.0, 0, 8)])[0]
    ids = b._tok(PROMPTS[1], return_tensors="pt")
    with torch.inference_mode():
        out = b._model.generate(**ids, do_sample=False, max_new_tokens=8, pad_token_id=b._tok.pad_token_id)
    third = int(out[0, ids["input_ids"].shape[1] + 2])
    # make the greedy path's third token the end-of-sequence token
    b._model.generation_config.eos_token_id = third
    res = b.generate([GenRequest("g", PROMPTS[1], 0.0, 0, 1.0, 0, 8)])[0]
    assert (res.finish_reason, res.num_tokens) == ("stop", 3) and first.finish_reason == "length"
    assert first.text.startswith(res.text)


def test_row_sampler_respects_topk_topp_and_distribution():
    import torch

    torch.manual_seed(0)
    scores = torch.randn(4, 50)
    topk5 = set(scores[0].topk(5).indices.tolist())
    probs = (scores[2] / 0.5).softmax(-1)
    order = probs.argsort(descending=True)
    nucleus = set(order[:int((probs[order].cumsum(0) < 0.6).sum()) + 1].tolist())
    picks = {0: [], 1: [], 2: [], 3: []}
    for step in range(400):
        sampler = RowSampler([1.0, 0.0, 0.5, 1.0], [5, 0, 0, 0], [1.0, 1.0, 0.6, 1.0],
                             [step, None, step, step], "cpu")
        out = sampler(None, scores.clone())
        for row in range(4):
            assert torch.isfinite(out[row]).sum() == (50 if row == 1 else 1)
            picks[row].append(int(out[row].argmax()))
    assert set(picks[0]) <= topk5 and len(set(picks[0])) == 5
    assert set(picks[1]) == {int(scores[1].argmax())}          # greedy row untouched
    assert set(picks[2]) <= nucleus
    # row 3: plain sampling at T=1 follows softmax (most likely token drawn about p*400 times)
    p = scores[3].softmax(-1)
    top = int(p.argmax())
    assert abs(picks[3].count(top) / 400 - float(p[top])) < 0.08


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ResetkitError, match="model path not found"):
        TransformersBackend(str(tmp_path / "nope")).check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResetkitError, match="no config.json"):
        TransformersBackend(str(tmp_path / "empty")).check()


def test_revision_fingerprint_follows_the_weights(tiny_llama, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama, copy)
    a = TransformersBackend(str(copy)).model_info()
    assert a["revision"].startswith("local-")
    assert a["revision"] == TransformersBackend(str(copy)).model_info()["revision"]
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert TransformersBackend(str(copy)).model_info()["revision"] != a["revision"]


def test_count_tokens(backend):
    counts = backend.count_tokens(PROMPTS)
    assert counts[2] < counts[0] and all(c > 0 for c in counts)


def test_prompt_longer_than_the_model_is_an_error_row(backend):
    res = backend.generate([GenRequest("long", "the cat " * 1200, 0.5, 0, 1.0, 1, 4),
                            GenRequest("ok", PROMPTS[0], 0.5, 0, 1.0, 1, 4)])
    assert res[0].finish_reason == "error" and "max_position_embeddings 1024" in res[0].error
    assert res[1].finish_reason == "length" and res[1].text is not None
