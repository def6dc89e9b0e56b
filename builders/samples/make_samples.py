"""Write the tiny upstream-format sample files in builders/samples/ (tens of rows per source).

Run: ``python builders/samples/make_samples.py [--out DIR]``.  The files are committed; a
test regenerates them into a temp dir and checks they equal the committed ones.

Each file uses its source's upstream schema and format, spread over every reader path
(JSONL, a JSON list, Parquet, CSV, folders with split naming), and the rows are chosen to
hit every rule's edge: context present/absent, OASST quality exactly 0.5 vs above and one
annotator vs two (both ``labels`` encodings), exactly 10 vs 11 words, ``[]`` / ``[""]`` /
``["[]"]`` well-formed answers, a gold answer only in the 6th passage, duplicates across
sources, Self-Instruct scaffolding, examples seen in training inside the evaluation sets.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

HERE = Path(__file__).parent

# shared across sources: the same example must be de-duplicated / flagged as seen
DUP_INSTRUCTION = "Explain why the sky looks blue during the day."
DUP_RESPONSE = ("Sunlight is scattered by the molecules of the air, and blue light is scattered "
                "much more than red light because its wavelength is shorter.")
SEEN_INSTRUCTION = "Give three tips for staying healthy."
NQ_SHARED_QUESTION = "who wrote the novel moby dick"
SHARED_ARTICLE = ("The city council approved a new bike lane network on Tuesday. The plan adds forty "
                  "kilometres of protected lanes over three years. Officials said cycling rose sharply.")

TOPICS = ["volcanoes", "honey bees", "the moon", "tea", "glaciers", "owls", "bridges", "coral reefs",
          "chess", "bread", "comets", "maple trees"]


def filler(topic: str, n: int = 14) -> str:
    """A response with ``n`` words about ``topic``."""
    words = (f"Here is a short and friendly answer about {topic} with enough detail to be useful "
             f"for readers who want to learn more about {topic} today").split()
    return " ".join((words * 3)[:n])


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(1, n + 1))


def dolly() -> list[dict]:
    rows = [{"instruction": f"Tell me one fact about {t}.", "context": "", "response": filler(t),
             "category": "open_qa"} for t in TOPICS[:6]]
    rows += [
        {"instruction": "When was the bridge finished?", "category": "closed_qa", "response": "In 1932.",
         "context": "The bridge was finished in 1932 [12] after six years of work [13]."},
        {"instruction": "Summarize this paragraph.", "category": "summarization",
         "context": "Owls hunt at night. They have silent flight.", "response": "Owls are silent night hunters."},
        {"instruction": "List the names.", "category": "information_extraction",
         "context": "Ann, Bob and Cy went out.", "response": "Ann, Bob, Cy"},
        {"instruction": "Name a primary colour.", "category": "open_qa", "context": "   ",
         "response": "Red is a primary colour."},  # whitespace-only context counts as none
        {"instruction": "", "category": "open_qa", "context": "", "response": "An answer with no question."},
        {"instruction": "Say nothing.", "category": "open_qa", "context": "", "response": "  "},
        {"instruction": DUP_INSTRUCTION, "category": "open_qa", "context": "", "response": DUP_RESPONSE},
        {"instruction": SEEN_INSTRUCTION, "category": "brainstorming", "context": "",
         "response": "Sleep well, eat vegetables, and walk every day."},
        {"instruction": "Brainstorm names for a cat.", "category": "brainstorming", "response": "Miso, Pixel, Juniper"},
    ]
    return rows


def _hub_labels(quality: float | None, count: int | None, extra: bool = True):
    if quality is None:
        return {"name": ["spam"], "value": [0.0], "count": [3]} if extra else None
    return {"name": ["spam", "quality", "toxicity"], "value": [0.0, quality, 0.1], "count": [count, count, count]}


def oasst1_train() -> list[dict]:
    """Hub Parquet encoding: ``labels`` is a struct of parallel lists (or null)."""
    def msg(mid, parent, role, text, quality=None, count=None, labels="auto", rank=None):
        if labels == "auto":
            labels = None if role == "prompter" else _hub_labels(quality, count)
        return {"message_id": mid, "parent_id": parent, "text": text, "role": role, "lang": "en",
                "deleted": False, "review_result": True, "rank": rank, "message_tree_id": "t-" + mid[:2],
                "labels": labels}
    return [
        msg("p1", None, "prompter", "What is the capital of France?"),
        msg("a1", "p1", "assistant", "The capital of France is Paris.", 0.75, 3, rank=0),
        msg("a2", "p1", "assistant", "Paris, I believe.", 0.5, 3, rank=1),          # exactly 0.5: out
        msg("a3", "p1", "assistant", "It is Paris, on the Seine.", 0.9, 1, rank=2),  # one annotator: out
        msg("a4", "p1", "assistant", "France's capital city is Paris.", 0.51, 2, rank=3),  # two, above: in
        msg("a5", "p1", "assistant", "Paris.", labels=None),                        # no labels at all
        msg("a6", "p1", "assistant", "Probably Paris.", labels=_hub_labels(None, None)),  # no quality label
        msg("p2", None, "prompter", "Write a haiku about rain."),
        msg("a7", "p2", "assistant", "", 0.9, 2),                                  # empty reply
        msg("a8", "zz-missing", "assistant", "A reply whose parent is not in the file.", 0.9, 3),
        msg("a9", "p3", "assistant", "Use a sieve to drain the pasta, then add the sauce.", 0.8, 2),
        msg("p3", None, "prompter", "How do I drain pasta?"),  # parent after its reply
        msg("p4", "a1", "prompter", "And what river runs through it?"),
        msg("a10", "p4", "assistant", "The Seine runs through Paris.", 0.66, 4),
        msg("p5", None, "prompter", DUP_INSTRUCTION),
        msg("a11", "p5", "assistant", DUP_RESPONSE, 0.9, 3),  # duplicate of Dolly's example
    ]


def oasst1_validation() -> list[dict]:
    """Raw JSON export encoding: ``labels`` is ``{name: {value, count}}``."""
    def msg(mid, parent, role, text, labels=None):
        return {"message_id": mid, "parent_id": parent, "text": text, "role": role, "lang": "en",
                "deleted": False, "review_result": True, "rank": None, "message_tree_id": "v-" + mid,
                "labels": labels}
    return [
        msg("vp1", None, "prompter", "Suggest a name for a bakery."),
        msg("va1", "vp1", "assistant", "How about 'Rise and Shine Bakery'?",
            {"quality": {"value": 0.7, "count": 2}, "humor": {"value": 0.4, "count": 2}}),
        msg("va2", "vp1", "assistant", "Bread Place.", {"quality": {"value": 0.5, "count": 4}}),
        msg("va3", "vp1", "assistant", "The Golden Crust.", {"quality": {"value": 0.95, "count": 1}}),
        msg("vp2", None, "prompter", "What is 2 + 2?"),
        msg("va4", "vp2", "assistant", "2 + 2 equals 4.", {"quality": {"value": 0.6, "count": 3}}),
    ]


def sharegpt() -> list[dict]:
    rows = [{"instruction": f"Write a paragraph about {t}.", "input": "", "output": filler(t, 20)}
            for t in TOPICS[:6]]
    rows += [
        {"instruction": "Describe a sunset in ten words.", "input": "", "output": words(10)},   # 10: out
        {"instruction": "Describe a sunrise in eleven words.", "input": "", "output": words(11)},  # 11: in
        {"instruction": "Translate the text.", "input": "Bonjour tout le monde", "output": filler("greetings")},
        {"instruction": "", "input": "", "output": filler("nothing")},
        {"instruction": DUP_INSTRUCTION, "input": "", "output": DUP_RESPONSE},  # duplicate of Dolly
        {"instruction": "  explain why the SKY looks blue during the day. ", "input": "",
         "output": DUP_RESPONSE},  # same after normalising case and spaces
        {"instruction": "Write a paragraph about tea.", "input": "", "output": filler("tea", 20)},  # same id
    ]
    return rows


def self_instruct() -> list[dict]:
    return [
        {"prompt": "Make a list of three fruits.\n\nOutput:", "completion": " apple, banana, cherry<|endoftext|>"},
        {"prompt": "Classify the sentiment of the sentence.\n\nInput: I love this phone.\n\nOutput:",
         "completion": " Positive<|endoftext|>"},
        {"prompt": "Convert the temperature to Fahrenheit.\nInput: 100 C\nOutput:", "completion": " 212 F<|endoftext|>"},
        {"prompt": "Give an antonym of 'happy'.\nOutput:", "completion": "sad"},
        {"prompt": "Write a tweet about spring.\n\nOutput:", "completion": " <|endoftext|>"},   # empty: out
        {"prompt": "\n\nInput: lonely input\n\nOutput:", "completion": " text<|endoftext|>"},  # no instruction
        {"prompt": "Name the largest ocean.\n\nOutput:", "completion": " The Pacific Ocean.<|endoftext|>"},
        {"prompt": f"Write a paragraph about {TOPICS[0]}.\n\nOutput:",
         "completion": " " + filler(TOPICS[0], 20) + "<|endoftext|>"},  # duplicate of ShareGPT
    ]


def alpaca() -> list[dict]:
    def row(i, inp, o):
        return {"instruction": i, "input": inp, "output": o, "text": f"{i}\n{inp}\n{o}"}
    return [
        row("Construct a sentence that describes a baby duck.", "", "A baby duck is small and fluffy."),
        row("Name two planets.", "", "Mars and Venus."),
        row("Rewrite the sentence in passive voice.", "The cat chased the mouse.", "The mouse was chased."),
        row(SEEN_INSTRUCTION, "", "Drink water, exercise, and sleep."),   # seen in if-train
        row("Name two planets.", "", "Jupiter and Saturn."),              # duplicate instruction
        row("Compile a list of ethical considerations for AI systems.", "", "Fairness, privacy, safety."),
        row("Give a synonym for 'quick'.", "", ""),                       # empty output
        row("Explain photosynthesis to a child.", "", "Plants use sunlight to make food."),
    ]


def vicuna() -> list[dict]:
    qs = [("generic", "How can I improve my time management skills?"),
          ("knowledge", "What are the main differences between Python and JavaScript?"),
          ("roleplay", "Pretend you are a pirate and describe your ship."),
          ("writing", "Write a short poem about autumn leaves."),
          ("common-sense", DUP_INSTRUCTION),  # seen in if-train
          ("math", "")]
    return [{"question_id": i + 1, "category": c, "turns": [q]} for i, (c, q) in enumerate(qs)]


def koala() -> list[dict]:
    ps = ["Write a cover letter for a junior developer position.", "What causes ocean tides?",
          "Plan a three-day trip to Kyoto.", "  ", "Explain recursion with an example.",
          "What causes ocean tides?"]
    return [{"id": f"koala_{i}", "prompt": p} for i, p in enumerate(ps)]


def _ctx(i, title, text, has_answer=None):
    c = {"id": str(1000 + i), "title": title, "text": text, "score": round(90.0 - i, 2)}
    if has_answer is not None:
        c["has_answer"] = has_answer
    return c


def _noise(i: int, topic: str) -> str:
    return f"Passage {i} talks about {topic} and gives background that does not contain the answer."


def dpr_rows(prefix: str, topics: list[tuple[str, str, str]]) -> list[dict]:
    """Edge cases of the DPR retriever-results format for question/answer/topic triples."""
    (q1, a1, t1), (q2, a2, t2), (q3, a3, t3), (q4, a4, t4), (q5, a5, t5), (q6, a6, t6) = topics[:6]
    rows = [
        {"question": q1, "answers": [a1], "ctxs": [_ctx(0, t1, f"{t1}: the answer is {a1}.", True)]
         + [_ctx(i, t1, _noise(i, t1), False) for i in range(1, 8)]},
        # gold only in the 6th passage
        {"question": q2, "answers": [a2], "ctxs": [_ctx(i, t2, _noise(i, t2), False) for i in range(5)]
         + [_ctx(5, t2, f"Only here: {a2} is the answer.", True)] + [_ctx(6, t2, _noise(6, t2), False)]},
        # no passage mentions a gold answer
        {"question": q3, "answers": [a3], "ctxs": [_ctx(i, t3, _noise(i, t3), False) for i in range(6)]},
        # no has_answer flags: the mention is computed
        {"question": q4, "answers": [a4.upper(), a4], "ctxs": [_ctx(i, t4, _noise(i, t4)) for i in range(2)]
         + [_ctx(2, t4, f"It was {a4}, as records show.")]},
        # no answers
        {"question": q5, "answers": [], "ctxs": [_ctx(0, t5, f"{a5} is mentioned.", True)]},
        # fewer than five passages
        {"question": q6, "answers": [a6], "ctxs": [_ctx(0, t6, f"Yes: {a6}.", True), _ctx(1, t6, _noise(1, t6), False)]},
    ]
    return rows


NQ_TOPICS = [(NQ_SHARED_QUESTION, "Herman Melville", "Moby-Dick"),
             ("when did the first moon landing happen", "1969", "Apollo 11"),
             ("what is the tallest mountain in africa", "Kilimanjaro", "Mountains"),
             ("who painted the mona lisa", "Leonardo da Vinci", "Mona Lisa"),
             ("what is the capital of peru", "Lima", "Peru"),
             ("how many legs does a spider have", "eight", "Spider")]


def nq_split(split: str) -> list[dict]:
    if split == "train":
        return dpr_rows("nq", NQ_TOPICS)
    extra = [("what language is spoken in brazil", "Portuguese", "Brazil"),
             ("who discovered penicillin", "Alexander Fleming", "Penicillin")]
    if split == "test":
        extra = [("what is the largest planet", "Jupiter", "Jupiter"),
                 ("who invented the telephone", "Alexander Graham Bell", "Telephone")]
    return [{"question": q, "answers": [a], "ctxs": [_ctx(0, t, f"{t}: {a}.", True),
                                                    _ctx(1, t, _noise(1, t), False)]} for q, a, t in extra]


def bioasq() -> list[dict]:
    return dpr_rows("bioasq", [
        ("which gene is mutated in cystic fibrosis", "CFTR", "Cystic fibrosis"),
        ("what organ produces insulin", "pancreas", "Insulin"),
        ("what virus causes chickenpox", "varicella zoster", "Chickenpox"),
        ("which vitamin deficiency causes scurvy", "vitamin C", "Scurvy"),
        ("what is the largest organ of the body", "skin", "Skin"),
        ("which chromosome carries the sry gene", "Y chromosome", "SRY"),
    ])


def searchqa() -> list[dict]:
    rows = dpr_rows("searchqa", [
        ("this peter frampton band's name refers to a forced apology", "Humble Pie", "Humble Pie"),
        ("this irish county lends its name to a blue terrier", "Kerry", "Kerry blue"),
        ("the largest desert in the world", "Sahara", "Sahara"),
        ("this planet is known as the red planet", "Mars", "Mars"),
        ("the author of 'pride and prejudice'", "Jane Austen", "Austen"),
        ("the chemical symbol for gold", "Au", "Gold"),
    ])
    rows.append({"question": NQ_SHARED_QUESTION, "answers": ["Herman Melville"],  # seen in cd-train
                 "ctxs": [_ctx(0, "Moby-Dick", "Herman Melville wrote Moby-Dick.", True)]})
    return rows


def _passages(texts: list[str], selected: list[int]) -> dict:
    return {"is_selected": selected, "passage_text": texts,
            "url": [f"http://example.com/{i}" for i in range(len(texts))]}


def ms_marco_split(split: str) -> list[dict]:
    def row(qid, query, wfa, texts, selected, answers=None):
        return {"query": query, "query_id": qid, "query_type": "DESCRIPTION", "answers": answers or ["x"],
                "passages": _passages(texts, selected), "wellFormedAnswers": wfa}
    base = 19000 + {"train": 0, "validation": 100, "test": 200}[split]
    t = [f"Passage {i} about school holidays and term dates." for i in range(10)]
    if split != "train":
        return [row(base + 1, f"{split} query about tides", ["Tides are caused by the moon's gravity."],
                    ["The moon's gravity pulls the oceans.", "Unrelated text."], [1, 0]),
                row(base + 2, f"{split} query with none", [], ["Some passage."], [1])]
    return [
        row(base + 1, "2015 college half term holiday dates", ["The half term is from 26 to 30 October 2015."],
            t, [1] + [0] * 9),
        row(base + 2, "what is a callable bond", [], t[:3], [0, 1, 0]),        # []: out
        row(base + 3, "what is a bond yield", [""], t[:3], [1, 0, 0]),         # [""]: out
        row(base + 4, "what is a coupon rate", ["[]"], t[:3], [1, 0, 0]),      # ["[]"]: out
        row(base + 5, "how long is a marathon", ["", "A marathon is 42.195 kilometres long."],
            t[:4], [0, 1, 0, 0]),
        row(base + 6, "when is the winter break", ["The winter break runs from 18 December to 5 January."],
            t, [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),                               # selected only 6th
        row(base + 7, "what is the boiling point of water", ["Water boils at 100 degrees Celsius."],
            t[:6], [0] * 6),                                                   # nothing selected
        row(base + 8, "how tall is the eiffel tower", ["The Eiffel Tower is 330 metres tall."],
            t[:2], [0, 1]),
    ]


def cnn_split(split: str) -> list[dict]:
    arts = {"train": ["A storm closed schools across the region on Monday. Officials expect reopening Wednesday.",
                      "The museum unveiled a restored painting after two years of work. Visitors queued for hours.",
                      SHARED_ARTICLE,
                      "Local farmers reported a record harvest of apples this autumn, citing a mild spring.",
                      "A new study finds that short walks after meals lower blood sugar levels.",
                      "The football club signed a young striker on a five-year contract."],
            "validation": ["A bakery donated bread to the food bank every day for a year.",
                           "The library extended its opening hours during exam season."],
            "test": ["Engineers completed the tunnel ahead of schedule and under budget.",
                     "The orchestra announced a free concert in the park next month."]}[split]
    rows = [{"article": a, "highlights": a.split(". ")[0] + ".\nMore details inside.", "id": f"{split}-{i:04d}"}
            for i, a in enumerate(arts)]
    if split == "train":
        rows.append({"article": "An article with no highlights at all.", "highlights": "", "id": "train-empty"})
    return rows


def wikisum_split(split: str) -> list[dict]:
    arts = {"test": [(". Condition score the horse Condition scoring is a process in which you assess the "
                      "amount of fat the horse has on it.", "Assess the horse's fat by condition scoring."),
                     ("Take your pencil and draw a line two inches below the corner. Draw straight lines.",
                      "To draw a spider web, draw a cross and connect it with arcs."),
                     (SHARED_ARTICLE, "A city approved a bike lane plan."),  # seen in cd-train
                     ("Water the plant once a week and keep it in indirect light.", "")],
            "train": [("Boil water, add the tea bag, wait three minutes.", "Steep tea for three minutes.")],
            "validation": [("Fold the paper in half twice.", "Fold the paper twice.")]}[split]
    return [{"url": f"https://www.wikihow.com/{split}-{i}", "title": f"How to do {split} thing {i}",
             "summary": s, "article": a, "step_headers": ""} for i, (a, s) in enumerate(arts)]


# -- writers -----------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_json(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_parquet(path: Path, rows: list[dict], schema) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, compression="zstd")


def oasst_schema():
    import pyarrow as pa

    return pa.schema([("message_id", pa.string()), ("parent_id", pa.string()), ("text", pa.string()),
                      ("role", pa.string()), ("lang", pa.string()), ("deleted", pa.bool_()),
                      ("review_result", pa.bool_()), ("rank", pa.int32()), ("message_tree_id", pa.string()),
                      ("labels", pa.struct([("name", pa.list_(pa.string())), ("value", pa.list_(pa.float64())),
                                            ("count", pa.list_(pa.int32()))]))])


def ms_marco_schema():
    import pyarrow as pa

    return pa.schema([("answers", pa.list_(pa.string())),
                      ("passages", pa.struct([("is_selected", pa.list_(pa.int32())),
                                              ("passage_text", pa.list_(pa.string())),
                                              ("url", pa.list_(pa.string()))])),
                      ("query", pa.string()), ("query_id", pa.int32()), ("query_type", pa.string()),
                      ("wellFormedAnswers", pa.list_(pa.string()))])


# source name -> the path passed as --source NAME=PATH (relative to the samples folder)
SAMPLE_PATHS = {
    "dolly": "dolly.jsonl", "oasst1": "oasst1", "sharegpt": "sharegpt.json",
    "self_instruct": "self_instruct.jsonl", "alpaca": "alpaca.csv", "vicuna": "vicuna_question.jsonl",
    "koala": "koala_test_set.jsonl", "nq": "nq", "ms_marco": "ms_marco", "cnn_dailymail": "cnn_dailymail",
    "bioasq": "bioasq.jsonl", "searchqa": "searchqa.json", "wikisum": "wikisum",
}


def make(out: Path = HERE) -> list[Path]:
    """Write every sample file under ``out``; returns the paths written."""
    out = Path(out)
    jobs = [
        (write_jsonl, "dolly.jsonl", dolly()),
        (lambda p, r: write_parquet(p, r, oasst_schema()), "oasst1/train.parquet", oasst1_train()),
        (write_jsonl, "oasst1/validation.jsonl", oasst1_validation()),
        (write_json, "sharegpt.json", sharegpt()),
        (write_jsonl, "self_instruct.jsonl", self_instruct()),
        (write_csv, "alpaca.csv", alpaca()),
        (write_jsonl, "vicuna_question.jsonl", vicuna()),
        (write_jsonl, "koala_test_set.jsonl", koala()),
        (write_json, "nq/train.json", nq_split("train")),
        (write_jsonl, "nq/dev.jsonl", nq_split("dev")),
        (write_jsonl, "nq/test.jsonl", nq_split("test")),
        (lambda p, r: write_parquet(p, r, ms_marco_schema()), "ms_marco/train.parquet", ms_marco_split("train")),
        (write_jsonl, "ms_marco/validation.jsonl", ms_marco_split("validation")),
        (write_jsonl, "ms_marco/test.jsonl", ms_marco_split("test")),
        (write_csv, "cnn_dailymail/train.csv", cnn_split("train")),
        (write_csv, "cnn_dailymail/validation.csv", cnn_split("validation")),
        (write_csv, "cnn_dailymail/test.csv", cnn_split("test")),
        (write_jsonl, "bioasq.jsonl", bioasq()),
        (write_json, "searchqa.json", searchqa()),
        (write_jsonl, "wikisum/train.jsonl", wikisum_split("train")),
        (write_jsonl, "wikisum/validation.jsonl", wikisum_split("validation")),
        (write_jsonl, "wikisum/test.jsonl", wikisum_split("test")),
    ]
    paths = []
    for writer, rel, rows in jobs:
        writer(out / rel, rows)
        paths.append(out / rel)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE), help="folder to write into (default: this folder)")
    args = ap.parse_args()
    for p in make(Path(args.out)):
        print(p)


if __name__ == "__main__":
    main()
