"""Cut the real slices in this folder from clones of the publishers' repositories.

Run: ``python tests/data/real/cut_slices.py REPOS_DIR [--out DIR]`` where ``REPOS_DIR`` holds
git clones named ``owner+name`` (e.g. ``lm-sys+FastChat``).  Files are read with ``git show
COMMIT:PATH`` at the commits named in each PROVENANCE, so the output is the same whatever
the clones' checked-out state.  A test (tests/builders/test_real_data.py) reads the committed
files; this script is how they were made.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).parent


def show(repos: Path, repo: str, commit: str, path: str) -> str:
    out = subprocess.run(["git", "-C", str(repos / repo.replace("/", "+")), "show", f"{commit}:{path}"],
                         check=True, capture_output=True)
    return out.stdout.decode("utf-8")


# upstream's encode_instance templates (yizhongw/self-instruct, self_instruct/prepare_for_finetuning.py)
WITH_INPUT = [("{instruction}\nInput: {input}\nOutput:", " {output}<|endoftext|>"),
              ("{instruction}\n\nInput: {input}\n\nOutput:", " {output}<|endoftext|>"),
              ("Task: {instruction}\nInput: {input}\nOutput:", " {output}<|endoftext|>"),
              ("{instruction}\n\n{input}\n\nOutput:", " {output}<|endoftext|>"),
              ("{instruction}\n\n{input}\n\n", "{output}<|endoftext|>"),
              ("{instruction}\n{input}\n\n", "{output}<|endoftext|>"),
              ("Task: {instruction}\n\n{input}\n\n", "{output}<|endoftext|>")]
WITHOUT_INPUT = [("{instruction} Output:", " {output}<|endoftext|>"),
                 ("{instruction}\nOutput:", " {output}<|endoftext|>"),
                 ("{instruction}\n\nOutput:", " {output}<|endoftext|>"),
                 ("{instruction}\n", "{output}<|endoftext|>"),
                 ("{instruction}\n\n", "{output}<|endoftext|>"),
                 ("Task: {instruction}\n\n", "{output}<|endoftext|>")]


def cut(repos: Path, out: Path) -> None:
    def write(rel: str, text: str) -> None:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")

    fastchat = "lm-sys/FastChat"
    write("vicuna/question.jsonl", show(repos, fastchat, "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
                                        "fastchat/llm_judge/data/vicuna_bench/question.jsonl"))
    write("vicuna/question_older.jsonl", show(repos, fastchat, "69d085eadab8e9fcf831a97e17e132658c3d2272",
                                              "fastchat/eval/table/question.jsonl"))
    koala = show(repos, "arnav-gudibande/koala-test-set", "2d4396aee3cff495382e9b0ad2521d70b177763b",
                 "koala_test_set.jsonl")
    write("koala/koala_test_set.jsonl", "".join(koala.splitlines(keepends=True)[:30]))
    alpaca = json.loads(show(repos, "tinh1115/alpaca-lora", "842fd5743492de069013807c2fc066bb7276779f",
                             "alpaca_data.json"))
    write("alpaca/alpaca_data.json", json.dumps(alpaca[:20], indent=4))

    seed = show(repos, "yizhongw/self-instruct", "0b26ccaa415992100fa32df62d41b994cf928e23", "data/seed_tasks.jsonl")
    finetuning, instances, k_with, k_without = [], [], 0, 0
    for line in seed.splitlines()[:26]:
        task = json.loads(line)
        ins, inp, outp = (task["instruction"].strip(), task["instances"][0]["input"].strip(),
                          task["instances"][0]["output"].strip())
        if inp:
            prompt, completion = WITH_INPUT[k_with % len(WITH_INPUT)]
            k_with += 1
        else:
            prompt, completion = WITHOUT_INPUT[k_without % len(WITHOUT_INPUT)]
            k_without += 1
        finetuning.append({"prompt": prompt.format(instruction=ins, input=inp),
                           "completion": completion.format(output=outp)})
        instances.append({"instruction": ins, "input": inp, "output": outp})
    write("self_instruct/gpt3_finetuning_data.jsonl", "".join(json.dumps(r) + "\n" for r in finetuning))
    write("self_instruct/all_generated_instances.jsonl", "".join(json.dumps(r) + "\n" for r in instances))

    trees = show(repos, "LAION-AI/Open-Assistant", "f1e6ed9526f5817531f3ab85441a40b3671ddccb",
                 "model/model_eval/manual/data/en_100_message.jsonl")
    messages: list[dict] = []

    def flatten(message: dict) -> None:
        messages.append({k: v for k, v in message.items() if k != "replies"})
        for reply in message.get("replies") or []:
            flatten(reply)
    for tree in [t for t in map(json.loads, trees.splitlines()) if t.get("synthetic") is False][:2]:
        flatten(tree)
    write("oasst1/messages.jsonl", "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages))
    # oasst1/readme_examples.jsonl and ms_marco/readme_example.jsonl were transcribed from the
    # READMEs' example blocks (see their PROVENANCE): a README is not a data file to cut.


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repos", type=Path, help="folder of git clones named owner+name")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    cut(args.repos, args.out)


if __name__ == "__main__":
    main()
