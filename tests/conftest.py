"""Shared fixtures: tiny random models from configs, a tiny tokenizer, tiny data.

Nothing is downloaded. Models are built once per session and saved to a temp dir,
so drivers load them by path like any real model.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from retriever.modeling.loading import prepare_tokenizer
from transformers import (AutoModel, BertConfig, GPT2Config, GPTNeoXConfig, LlamaConfig,
                          PreTrainedTokenizerFast)

WORDS = (
    "apple banana cherry dog eagle fish garden house island jungle kettle lemon mountain "
    "night ocean piano queen river sun tree umbrella valley water yellow zebra red blue green "
    "small large fast slow bright dark warm cold old new what is the a of in on and how why"
).split()
TOPICS = [WORDS[i:i + 4] for i in range(0, 28, 4)]  # 7 topics of 4 words
# Digits, as every real vocabulary has: truncation finds a template's ending by rendering it
# around "0" and "1 2 3 4" (collator.template_ending), which must not both be [UNK].
DIGITS = tuple("0123456789")


def make_tokenizer(eos="</s>", pad=None, padding_side="right", digits=True):
    vocab = {w: i for i, w in enumerate(["[UNK]", "</s>", "<pad>", "[CLS]", "[SEP]", *WORDS, *(DIGITS if digits else ())])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    kwargs = {"eos_token": eos} if eos else {}
    if pad:
        kwargs["pad_token"] = pad
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", padding_side=padding_side,
                                   **kwargs)


def tiny_config(arch: str, vocab_size: int):
    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=1, pad_token_id=1)
    if arch == "llama":
        return LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **common)
    if arch == "pythia":
        return GPTNeoXConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=256, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)
    if arch == "bert":
        return BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=256, vocab_size=vocab_size, pad_token_id=2)
    raise ValueError(arch)


def save_tiny_model(path, arch: str):
    torch.manual_seed(0)
    tokenizer = make_tokenizer(eos=None if arch == "bert" else "</s>")
    if arch == "bert":  # as a real BERT tokenizer: [CLS] text [SEP]
        tokenizer.add_special_tokens({"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "<pad>"})
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tokenizer.cls_token_id),
                                                     ("[SEP]", tokenizer.sep_token_id)])
    model = AutoModel.from_config(tiny_config(arch, len(tokenizer)))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama decoder with its tokenizer, as a local model directory."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_arch_dirs(tmp_path_factory):
    return {arch: save_tiny_model(tmp_path_factory.mktemp(f"tiny-{arch}"), arch)
            for arch in ("llama", "pythia", "gpt2", "bert")}


@pytest.fixture
def tokenizer():
    """The tiny tokenizer as the package prepares it: pad = EOS, right padding."""
    return prepare_tokenizer(make_tokenizer())


def topic_text(rng, topic, n=6):
    return " ".join(rng.choice(topic) for _ in range(n))


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory):
    """A BEIR directory: 28 docs on 7 topics, 14 test queries, each relevant to its topic's docs."""
    root = tmp_path_factory.mktemp("beir")
    rng = random.Random(0)
    docs, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for t, topic in enumerate(TOPICS):
        for k in range(4):
            docs.append({"_id": f"d{t}-{k}", "title": topic[0], "text": topic_text(rng, topic)})
        for k in range(2):
            queries.append({"_id": f"q{t}-{k}", "text": "what is " + topic_text(rng, topic, 3)})
            qrels.append(f"q{t}-{k}\td{t}-{k}\t1")
    write_jsonl(root / "corpus.jsonl", docs)
    write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_groups(tmp_path_factory):
    """Tevatron-layout training groups: positive from the query's topic, negatives from others."""
    rng = random.Random(1)
    rows = []
    for i in range(16):
        t = i % len(TOPICS)
        others = [topic for k, topic in enumerate(TOPICS) if k != t]
        rows.append({
            "query_id": str(i),
            "query": topic_text(rng, TOPICS[t], 3),
            "positive_passages": [{"docid": f"p{i}", "title": "", "text": topic_text(rng, TOPICS[t])}],
            "negative_passages": [{"docid": f"n{i}-{k}", "title": "", "text": topic_text(rng, rng.choice(others))}
                                  for k in range(5)],
        })
    return write_jsonl(tmp_path_factory.mktemp("groups") / "train.jsonl", rows)


REPO = Path(__file__).resolve().parents[1]


def readme_commands(readme: str, heading: str) -> str:
    """The first ```bash block under `heading` of a README of this repo, as written there."""
    section = (REPO / readme).read_text().split(heading, 1)[1]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)


def run_readme_tiny(doc: str, section: str, tmp_path, beir_dir, model_dir, more: str = ""):
    """The commands of a README section (then `more` commands) run as a user would (run_as_a_user), with
    their train_msmarco.sh run given a tiny model and two steps (EXTRA_ARGS: flags after the recipe)."""
    extra = f"--model_name_or_path {model_dir} --max_steps 2 --query_max_len 24 --passage_max_len 32"
    commands = (readme_commands(doc, section) + more).replace(
        "bash retriever/scripts/train_msmarco.sh", f'EXTRA_ARGS="{extra}" bash retriever/scripts/train_msmarco.sh')
    return run_as_a_user(commands, tmp_path, beir_dir)


def run_as_a_user(commands: str, tmp_path, beir_dir, **env) -> tuple[Path, subprocess.CompletedProcess]:
    """Run README commands as a user of a fresh clone would: from the project root, with
    `python` on PATH and `../shared/data/scifact` beside the project (here a copy of the tiny BEIR
    set `beir_dir`, given a train split). Returns (project dir, the finished process)."""
    scifact = tmp_path / "shared" / "data" / "scifact"
    shutil.copytree(beir_dir, scifact)
    shutil.copy(scifact / "qrels" / "test.tsv", scifact / "qrels" / "train.tsv")
    project = tmp_path / "project"
    project.mkdir()
    (project / "retriever").symlink_to(REPO / "retriever")
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHON"}, "HF_HUB_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    return project, done


# ---- a tiny trained model and the flags that make one, shared by the driver and module tests ----------
TRAIN_FLAGS = ["--max_steps", "3", "--per_device_train_batch_size", "4", "--train_group_size", "3",
               "--learning_rate", "1e-3", "--query_max_len", "8", "--passage_max_len", "12"]
# the same small recipe without a step count, seeded: runs that are killed, diverge or repeat
RUN_FLAGS = ["--per_device_train_batch_size", "4", "--train_group_size", "3", "--learning_rate", "1e-3",
             "--query_max_len", "8", "--passage_max_len", "12", "--seed", "7"]


def train_args(model_dir, groups, out, *extra):
    """train driver flags: RUN_FLAGS on these groups into `out`, then `extra`."""
    return ["--model_name_or_path", model_dir, "--train_data", str(groups), "--output_dir", str(out),
            *RUN_FLAGS, *extra]


def losses(out):
    """(step, loss) of every logged step of a training run."""
    return [(e["step"], e["loss"]) for e in json.loads((out / "train_log.json").read_text())]


@pytest.fixture(scope="session")
def trained(tiny_model_dir, tiny_groups, tmp_path_factory):
    """A tiny model trained 3 steps (TRAIN_FLAGS) by the train driver."""
    from retriever.driver import train

    out = tmp_path_factory.mktemp("trained")
    train.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                "--output_dir", str(out), *TRAIN_FLAGS])
    return out


@pytest.fixture(scope="session")
def echo_beir(tmp_path_factory, tiny_beir):
    """tiny_beir's corpus; each test query is one document's exact title + text, judged relevant to it,
    so that any model ranks that document first."""
    root = tmp_path_factory.mktemp("echo")
    docs = [json.loads(line) for line in (tiny_beir / "corpus.jsonl").read_text().splitlines()]
    shutil.copy(tiny_beir / "corpus.jsonl", root / "corpus.jsonl")
    chosen = docs[::4]  # one document a topic
    write_jsonl(root / "queries.jsonl", [{"_id": f"q-{d['_id']}", "text": f"{d['title']} {d['text']}"}
                                         for d in chosen])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q-{d['_id']}\t{d['_id']}\t1\n" for d in chosen))
    return root


@pytest.fixture(scope="session")
def reranker_dir(tiny_model_dir, tiny_groups, tmp_path_factory):
    """A tiny re-ranker trained 10 steps by driver.train_reranker."""
    from retriever.driver import train_reranker

    out = tmp_path_factory.mktemp("reranker")
    train_reranker.main(["--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups),
                         "--output_dir", str(out), "--max_steps", "10", "--per_device_train_batch_size", "4",
                         "--train_group_size", "3", "--learning_rate", "1e-2", "--query_max_len", "8",
                         "--passage_max_len", "12"])
    return out
