"""Choose a recipe by measurement on the training split alone: probes of a base recipe, scored on held-out train queries.

    python benchmarks/recipe_probes.py --recipe encoder_cpu --model_name_or_path pypi:all_minilm_l6_v2 \
        --probe base= --probe lr2e-5="--learning_rate 2e-5" --probe epochs2="--num_train_epochs 2"

By hand, not in CI. The train qrels of --data_dir are split, with a seed, into --dev_queries held-out
queries (qrels/dev.tsv) and the rest (qrels/fit.tsv); training groups with BM25-mined hard negatives
come from the rest; every probe trains the recipe with its own flags after it, and is scored on the
held-out queries over the whole corpus, or with --dev_docs N over their judged documents and random
others, N in all (a decoder encodes ~5 passages/s on 2 cores: SciFact's 5,183 take it ~17 min a probe).
A probe already trained is reused, and its embeddings are read from the embedding cache. The test split
is never read. With --check_data DIR, every probe is also scored on another BEIR folder's --check_split
(default dev; NFCorpus has one) over --check_docs documents, in a second report: whether a lever that
gains on the held-out train queries also gains on a set the model never trained on. Prints the report
(nDCG@10 and a paired test against the first probe) and each probe's training seconds; everything is in
--run_dir/dev<dev_queries>-seed<seed>/.
"""
import argparse
import json
import random
import shlex
from pathlib import Path

from retriever.data import load_qrels
from retriever.pipeline import Pipeline
from retriever.spec import TRAIN_LOG_FILE

HERE = Path(__file__).resolve().parent


def split_train(data_dir: Path, out: Path, n_dev: int, seed: int) -> None:
    """A BEIR directory beside the run: the corpus and queries of data_dir (linked), its train qrels in two."""
    qrels = load_qrels(str(data_dir), "train")
    dev = set(random.Random(seed).sample(sorted(qrels), n_dev))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (out / name).exists():
            (out / name).symlink_to((data_dir / name).resolve())
    for split, keep in (("dev", lambda q: q in dev), ("fit", lambda q: q not in dev)):
        rows = [f"{q}\t{d}\t{s}\n" for q, rels in qrels.items() if keep(q) for d, s in rels.items()]
        (out / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", required=True, help="the base recipe: a name in retriever/recipes/ or a file")
    p.add_argument("--model_name_or_path", default=None, help="after the recipe (default: the recipe's)")
    p.add_argument("--probe", action="append", required=True, help="NAME=FLAGS: driver flags after the recipe")
    p.add_argument("--data_dir", default=str(HERE.parents[1] / "shared" / "data" / "scifact"))
    p.add_argument("--dev_queries", type=int, default=150)
    p.add_argument("--dev_docs", type=int, default=0, help="score on a subset of the corpus this size (0: all of it)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--eval_flags", default="", help="evaluate flags for every probe (e.g. --batch_size 32)")
    p.add_argument("--run_dir", default="runs/recipe-probes")
    p.add_argument("--check_data", default=None, help="a BEIR folder every probe is also scored on (its check split)")
    p.add_argument("--check_split", default="dev")
    p.add_argument("--check_docs", type=int, default=300, help="its documents: the judged ones + random others")
    a = p.parse_args()
    # everything derived from the split (its groups, its dev subsets, the probes trained on it) is kept under a
    # folder named by the split's flags, so a rerun with other --dev_queries or --seed reuses none of it
    run = Path(a.run_dir) / f"dev{a.dev_queries}-seed{a.seed}"
    pipeline = Pipeline(run, "recipe_probes")
    split = run / "split"
    split_train(Path(a.data_dir), split, a.dev_queries, a.seed)
    groups = run / "fit_groups.jsonl"
    if not groups.is_file():
        pipeline.run("mine", "--data_dir", split, "--split", "fit", "--output_file", groups)
    dev, corpus = split, "whole corpus"
    if a.dev_docs:
        dev, corpus = run / f"dev-{a.dev_docs}", f"{a.dev_docs} docs (their judged ones + random others)"
        if not (dev / "corpus.jsonl").is_file():
            pipeline.run("subset", "--data_dir", split, "--split", "dev", "--n_docs", a.dev_docs, "--output_dir", dev)
    check = None
    if a.check_data:
        check = run / f"check-{Path(a.check_data).name}-{a.check_split}-{a.check_docs}"
        if not (check / "data" / "corpus.jsonl").is_file():
            pipeline.run("subset", "--data_dir", a.check_data, "--split", a.check_split, "--n_docs", a.check_docs,
                         "--output_dir", check / "data")
    model = ["--model_name_or_path", a.model_name_or_path] if a.model_name_or_path else []
    probes = [probe.split("=", 1) for probe in a.probe]
    times = []
    for name, flags in probes:
        pipeline.stage(f"probe {name}: {flags or '(the recipe)'}")
        out = run / name
        pipeline.run("train", "--recipe", a.recipe, *model, "--train_data", groups, "--output_dir", out / "model",
                     *shlex.split(flags))
        log = json.loads((out / "model" / TRAIN_LOG_FILE).read_text())  # its seconds, also when it was reused
        times.append(f"{name}={log[-1]['seconds']:.0f}")
        # a probe already scored reads its embeddings back from the cache (keyed on the weights), not a re-encode
        pipeline.run("evaluate", "--model_name_or_path", out / "model", "--data_dir", dev, "--split", "dev",
                     "--output_dir", out, "--name", name, "--save_index", False, "--cache_embeddings", True,
                     *shlex.split(a.eval_flags))
        if check:
            pipeline.run("evaluate", "--model_name_or_path", out / "model", "--data_dir", check / "data", "--split",
                         a.check_split, "--output_dir", check / name, "--name", name, "--save_index", False,
                         "--cache_embeddings", True, *shlex.split(a.eval_flags))
    pipeline.run("report", "--run_dir", run, "--systems", *[name for name, _ in probes],
                 "--title", f"recipe probes of {a.recipe}: {a.dev_queries} held-out train queries, {corpus}",
                 "--summary", f"Training seconds: {' '.join(times)}.")
    if check:
        pipeline.run("report", "--run_dir", check, "--systems", *[name for name, _ in probes],
                     "--title", f"the same probes on {a.check_data} {a.check_split}, {a.check_docs} docs (their judged "
                     "ones + random others): never trained on")


if __name__ == "__main__":
    main()
