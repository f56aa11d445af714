"""Multi-task embedder against single-task embedders, offline (after LLM-Embedder): train each, evaluate all on every task.

    python -m retriever.driver.run_multitask [--tasks scifact nfcorpus] [--max_steps 16]

Stages: for each task (a BEIR set with train and test qrels), training groups with BM25-mined hard
negatives (driver.mine), a test subset (driver.subset), BM25 on it (driver.bm25) and one model
trained on that task alone (driver.train, the recipe); one multi-task model trained on every task
(task instructions, one-task batches, self-paced task weights) for as many steps as the single-task
models together; every model evaluated on every task (driver.evaluate); one report (driver.report).
Every command is written to RUN_DIR/commands.sh; retriever/scripts/run_multitask.sh passes its
environment variables as these flags.
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from retriever.driver import make_parser, run_cli
from retriever.io import check_counts, write_json
from retriever.pipeline import Pipeline, beir_dir
from retriever.spec import read_spec

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
# Each task's instruction, LLM-Embedder style; a task without its own gets "<task> question/document: ".
INSTRUCTIONS = {
    "scifact": {"query_prefix": "Claim to verify: ", "passage_prefix": "Scientific abstract: "},
    "nfcorpus": {"query_prefix": "Health question: ", "passage_prefix": "Medical article: "},
}


@dataclass
class RunMultitaskArguments:
    train_recipe: str = field(default="multitask_cpu", metadata={
        "help": "Every model's recipe: a name in retriever/recipes/ or a JSON file of train driver flags."})
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "The base model, after the recipe (default: the recipe's, else the train driver's)."})
    data_root: str = field(default=str(SHARED_DATA), metadata={"help": "Holds one BEIR directory per task."})
    tasks: list[str] = field(default_factory=lambda: ["scifact", "nfcorpus"], metadata={
        "help": "The tasks: BEIR directories under --data_root, each with train and test qrels."})
    run_dir: str = field(default="runs/multitask", metadata={"help": "Everything is written here."})
    max_steps: int = field(default=16, metadata={
        "help": "Steps of each single-task model; the multi-task model trains for their sum."})
    eval_queries: int = field(default=50, metadata={"help": "Random test queries per task."})
    eval_docs: int = field(default=200, metadata={"help": "Their judged docs + random others, per task."})

    def __post_init__(self):
        self.tasks = [task for words in self.tasks for task in words.split()]
        if len(self.tasks) < 2:
            raise ValueError(f"--tasks needs at least two tasks; got {self.tasks}")
        check_counts(self, "max_steps", "eval_queries", "eval_docs")


def main(argv=None):
    args, = make_parser(RunMultitaskArguments, __doc__).parse_args_into_dataclasses(args=argv)
    data = {task: beir_dir(task, Path(args.data_root), "qrels/train.tsv", f"task '{task}'",
                           "Point --data_root (DATA_ROOT=) at a folder of BEIR directories, one per task")
            for task in args.tasks}
    run = Path(args.run_dir)
    pipeline = Pipeline(run, "run_multitask")
    instructions = {task: INSTRUCTIONS.get(task, {"query_prefix": f"{task} question: ",
                                                  "passage_prefix": f"{task} document: "}) for task in args.tasks}
    write_json(run / "tasks.json", instructions)
    model = ["--model_name_or_path", args.model_name_or_path] if args.model_name_or_path else []

    def train(output_dir: Path, steps: int, *flags) -> float:
        return pipeline.run("train", "--recipe", args.train_recipe, *model, "--max_steps", steps, "--output_dir",
                            output_dir, *flags)

    times = []
    for task, source in data.items():
        pipeline.stage(f"{task}: training groups and test subset")
        pipeline.run("mine", "--data_dir", source, "--split", "train", "--output_file", run / f"{task}.jsonl")
        pipeline.run("subset", "--data_dir", source, "--split", "test", "--n_queries", args.eval_queries,
                     "--n_docs", args.eval_docs, "--output_dir", run / task / "data")
        pipeline.run("bm25", "--data_dir", run / task / "data", "--output_dir", run / task / "bm25")
        pipeline.stage(f"{task}: single-task model")
        seconds = train(run / f"model-{task}", args.max_steps, "--train_data", run / f"{task}.jsonl")
        times.append(f"train-{task}={seconds:.0f}")

    steps = args.max_steps * len(args.tasks)
    pipeline.stage(f"multi-task model: {'+'.join(args.tasks)}, {steps} steps")
    seconds = train(run / "model-multitask", steps, "--train_files", *[f"{t}={run / t}.jsonl" for t in args.tasks],
                    "--task_instructions", run / "tasks.json", "--self_paced", True)
    times.append(f"train-multitask={seconds:.0f}")

    models = [*args.tasks, "multitask"]
    for task in args.tasks:
        for trained_on in models:
            pipeline.stage(f"{task}: evaluate model-{trained_on}")
            pipeline.run("evaluate", "--model_name_or_path", run / f"model-{trained_on}", "--data_dir",
                         run / task / "data", "--output_dir", run / task / f"model-{trained_on}",
                         "--name", f"trained on {trained_on}", "--save_index", False,
                         *(["--task", task] if trained_on == "multitask" else []))

    pipeline.stage("report")
    base = read_spec(run / "model-multitask").base_model
    pipeline.run("report", "--run_dir", run, "--sets", *args.tasks, "--systems", "bm25",
                 *[f"model-{m}" for m in models], "--title", f"multi-task vs single-task, {Path(base).name}",
                 "--summary", f"Training seconds: {' '.join(times)}.")
    print(f"[run_multitask] done in {pipeline.seconds()} s: {run / 'report.md'}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
