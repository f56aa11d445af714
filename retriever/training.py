"""One training run, shared by the retriever and the re-ranker drivers: data, spec, model,
loss, Trainer (resuming a killed run, evaluating on a dev set), and the saved model with
its spec and model card. What differs between the two is a `ModelKind`."""
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from transformers import set_seed

from retriever.arguments import DataArguments, ModelArguments
from retriever.io import read_json, write_json
from retriever.spec import (LOSS_CURVE_FILE, RERANKER_SPEC_FILE, SPEC_FILE, TRAIN_LOG_FILE, EmbeddingSpec,
                            RerankerSpec, given_fields)
from retriever.data import TrainDataset, load_train_groups
from retriever.dev_eval import DevSet
from retriever.distributed import rank
from retriever.loss_log import LossLogCallback, dev_curves, quarter_means
from retriever.modeling.loading import load_tokenizer
from retriever.modeling.loss import build_loss
from retriever.multitask import parse_train_file, read_task_instructions
from retriever.trainer import RetrieverTrainer, RetrieverTrainingArguments, last_complete_checkpoint

logger = logging.getLogger(__name__)


# The argument set of the two training drivers (train, train_reranker).
TRAIN_ARGUMENTS = (ModelArguments, DataArguments, RetrieverTrainingArguments)


def load_dataset(data_args, seed: int) -> TrainDataset:
    """--train_data, or the --train_files of several tasks, each group tagged with its task."""
    need_negatives = data_args.train_group_size > 1
    if not data_args.train_files:
        groups = load_train_groups(data_args.train_data, data_args.train_split,
                                   need_negatives)[: data_args.max_train_groups]
        return TrainDataset(groups, data_args.train_group_size, seed)
    groups = []
    for task, path in map(parse_train_file, data_args.train_files):
        task_groups = load_train_groups(path, data_args.train_split, need_negatives)[: data_args.max_train_groups]
        groups += [{**g, "task": task} for g in task_groups]
        logger.info("task %s: %d groups from %s", task, len(task_groups), path)
    return TrainDataset(groups, data_args.train_group_size, seed)


def embedding_spec(model_args, data_args) -> EmbeddingSpec:
    """The spec of the retriever this run trains: the spec's defaults with the flags given."""
    instructions = read_task_instructions(data_args.task_instructions) if data_args.task_instructions else {}
    return EmbeddingSpec(temperature=model_args.temperature, task_instructions=instructions,
                         base_model=model_args.model_name_or_path).with_given(model_args)


def training_reading(spec, data_args):
    """The spec the collator shapes training text with: the model's own, with passages cut at
    --train_passage_max_len when it is given (train short, read long; the saved spec is the model's)."""
    if data_args.train_passage_max_len is None:
        return spec
    if not isinstance(spec, EmbeddingSpec):
        raise ValueError("--train_passage_max_len is for retrievers: a re-ranker reads each pair within "
                         "--query_max_len + --passage_max_len")
    return dataclasses.replace(spec, passage_max_len=data_args.train_passage_max_len)


def reranker_spec(model_args, data_args) -> RerankerSpec:
    """The spec of the re-ranker this run trains: the given flags over the specs' defaults; a pair is at
    most query_max_len + passage_max_len tokens."""
    lengths = EmbeddingSpec().with_given(model_args, ("query_max_len", "passage_max_len"))
    return RerankerSpec(**given_fields(model_args, ("pooling", "query_prefix", "passage_prefix")),
                        query_max_len=lengths.query_max_len, max_len=lengths.query_max_len + lengths.passage_max_len,
                        base_model=model_args.model_name_or_path)


@dataclass
class ModelKind:
    """What differs between training a retriever and a re-ranker."""
    name: str  # "retriever" or "reranker": the model the run trains (and the losses that fit it)
    spec: Callable  # (model_args, data_args) -> the spec of the model trained
    model: Callable  # (spec, model_args, loss) -> the model
    collator: Callable  # (tokenizer, spec) -> the data collator
    default_loss: str  # --loss when not given


def fit(model, dataset, collator, training_args, tokenizer, dev=None) -> RetrieverTrainer:
    """Train with the Trainer, resuming a killed run from its last checkpoint.

    With a dev set (retriever.dev_eval.DevSet), the model is evaluated on it before
    training, every --eval_steps steps, and after the last step.
    """
    output_dir = Path(training_args.output_dir)
    trainer = RetrieverTrainer(model=model, args=training_args, train_dataset=dataset, eval_dataset=dev,
                               data_collator=collator, processing_class=tokenizer,
                               callbacks=[LossLogCallback(str(output_dir))])
    resume = training_args.resume_from_checkpoint
    if resume is None and output_dir.is_dir():
        resume = last_complete_checkpoint(output_dir)  # pick up a killed run automatically
        if resume:
            logger.info("resuming from %s", resume)
    if dev is not None and not resume:
        trainer.evaluate()  # step 0: where the base model starts
    trainer.train(resume_from_checkpoint=resume)
    if dev is not None and not any("eval_MRR@10" in h and h["step"] == trainer.state.global_step
                                   for h in trainer.state.log_history):
        trainer.evaluate()  # the final model, when the last step was not an --eval_steps step
    return trainer


# Files whose presence makes a directory a model (loading.resolve_model_path): moved in last.
MODEL_MARKERS = ("config.json", "adapter_config.json")


# Flags that name places or runs, not the recipe: left out of the model card's recipe table.
NOT_RECIPE = {"output_dir", "logging_dir", "run_name", "train_data", "train_files", "model_name_or_path"}


# The run's recipe, kept in the output dir so that a rerun resumes only the same run.
RECIPE_FILE = "run_recipe.json"
# Flags that change where or how often things are written, not what is trained.
NOT_TRAINING = NOT_RECIPE | {"resume_from_checkpoint", "overwrite_output_dir", "report_to", "logging_steps", "local_rank",
                             "save_steps", "save_strategy", "save_total_limit", "dataloader_num_workers"}


def run_recipe(args) -> dict:
    """Every flag that changes what a run trains, as JSON values, and what the training data held: the size
    and sha256 of each local file (a hub dataset is named only)."""
    flags = {k: v for k, v in non_default_flags(*args).items() if k not in NOT_TRAINING}
    model_args, data_args, _ = args
    flags.update(model=model_args.model_name_or_path, data=data_args.train_files or data_args.train_data)
    paths = [parse_train_file(f)[1] for f in data_args.train_files] or [data_args.train_data]
    contents = {path: fingerprint for path in paths if (fingerprint := data_fingerprint(path))}
    if contents:
        flags[DATA_CONTENTS] = contents
    return json.loads(json.dumps(flags, default=str))


# The run recipe's record of what the training data held (run_recipe).
DATA_CONTENTS = "data_contents"


def data_fingerprint(path: str) -> Optional[str]:
    """'<bytes> bytes, sha256 <hex>' of a local training file, or of a directory's files (their names, sizes
    and contents); None for a hub dataset."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    if not files:
        return None
    digest, size = hashlib.sha256(), 0
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0" if file != root else b"")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    return f"{size} bytes, sha256 {digest.hexdigest()}"


def check_output_dir(output_dir: Path, recipe: dict, overwrite: bool, clean: bool = True) -> bool:
    """A rerun into an output dir resumes the same run only: a finished model, or checkpoints of
    another recipe, are refused (naming the flags that differ) unless --overwrite_output_dir.
    Returns True when the dir already holds the finished model of this very recipe: nothing to train.
    With overwrite, the earlier run's checkpoints and logs are removed when `clean` (rank 0 only)."""
    earlier_file = output_dir / RECIPE_FILE
    if overwrite:
        for old in [*output_dir.glob("checkpoint-*"), earlier_file, output_dir / TRAIN_LOG_FILE,
                    output_dir / LOSS_CURVE_FILE] if clean else []:
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
        return False
    finished = (any((output_dir / f).is_file() for f in (SPEC_FILE, RERANKER_SPEC_FILE))
                and any((output_dir / m).is_file() for m in MODEL_MARKERS))
    earlier = read_json(earlier_file, "remove it (or pass --overwrite_output_dir True) to train again") \
        if earlier_file.is_file() else None
    if finished and earlier == recipe:
        return True
    changed = earlier and {path: (before, recipe.get(DATA_CONTENTS, {}).get(path))
                           for path, before in earlier.get(DATA_CONTENTS, {}).items()
                           if before != recipe.get(DATA_CONTENTS, {}).get(path)}
    if changed and {k: v for k, v in earlier.items() if k != DATA_CONTENTS} == \
            {k: v for k, v in recipe.items() if k != DATA_CONTENTS}:
        path, (before, now) = next(iter(changed.items()))
        raise ValueError(f"--output_dir {output_dir}: holds {'a finished model' if finished else 'checkpoints'} "
                         f"trained on {path} as it was then ({before}); it holds other data now ({now}). Pass "
                         "--overwrite_output_dir True to train again on the new data, or choose a new --output_dir")
    if finished and earlier is None:
        raise FileExistsError(f"--output_dir {output_dir}: holds a finished model; choose a new --output_dir, or pass "
                              "--overwrite_output_dir True to train over it")
    if earlier is not None and earlier != recipe:
        differ = sorted(k for k in set(earlier) | set(recipe) if earlier.get(k) != recipe.get(k))
        shown = ", ".join(f"--{k} {earlier.get(k, '(default)')} -> {recipe.get(k, '(default)')}" for k in differ)
        what = "a finished model" if finished else "checkpoints"
        raise ValueError(f"--output_dir {output_dir}: holds {what} of a run with another recipe ({shown}); rerun "
                         "with the same flags to resume it, or pass --overwrite_output_dir True to start over")
    return False


def non_default_flags(*dataclass_args) -> dict:
    """Every flag whose value differs from the flag's default (the recipe of a run)."""
    changed = {}
    for args in dataclass_args:
        defaults = type(args)()  # built like the parsed one, so derived values compare equal
        for f in dataclasses.fields(args):
            value = getattr(args, f.name)
            if f.init and f.name not in NOT_RECIPE and value != getattr(defaults, f.name):
                changed[f.name] = getattr(value, "value", value)  # enums as their flag value
    return changed


def model_card(args, spec, n_groups: int, history: list[dict]) -> str:
    """README.md of a trained model: what it is, what it was trained on and how, its final loss,
    and its dev-set metrics when the run evaluated."""
    model_args, data_args, training_args = args
    losses = [h["loss"] for h in history if "loss" in h]
    first, last = quarter_means(losses) if losses else (float("nan"), float("nan"))
    data = " ".join(data_args.train_files) if data_args.train_files else data_args.train_data
    recipe = "\n".join(f"| `--{k}` | `{v}` |" for k, v in sorted(non_default_flags(*args).items()))
    return f"""# Dense retriever trained with `retriever`

- base model: `{model_args.model_name_or_path}`
- training data: `{data}` ({n_groups} query groups, {data_args.train_group_size} passage(s) each)
{spec.describe()}
- training: {len(losses)} logged steps; final loss {losses[-1] if losses else float("nan"):.4f} \
(mean of the first quarter of steps {first:.4f}, of the last quarter {last:.4f}); \
curve in `{LOSS_CURVE_FILE}`, every step in `{TRAIN_LOG_FILE}`
{eval_table(history, training_args)}
## Recipe: every flag that differs from its default

| flag | value |
|---|---|
{recipe}

## Use

With sentence-transformers (the query and document prompts, lengths and pooling are in this directory):

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("THIS_DIR")
scores = model.encode_query(["a question"]) @ model.encode_document(["a passage"]).T
```

With this project: evaluate it on a BEIR directory in one command (encode, search, score, and save a searchable
index), then ask that index questions in words:

```bash
python -m retriever.driver.evaluate --model_name_or_path THIS_DIR --data_dir BEIR_DIR --output_dir eval
python -m retriever.driver.query --index_dir eval/index "a question"
```

`embedding_spec.json` here says how the model reads text and pools; encode follows it.
"""


def eval_table(history: list[dict], training_args) -> str:
    """The dev-set metrics of the run, one row per evaluation ("" when it did not evaluate)."""
    curves = dev_curves(history)
    if not curves:
        return ""
    names = list(curves)
    by_step = {}
    for name, points in curves.items():
        for step, value in points:
            by_step.setdefault(step, {})[name] = value
    rows = "\n".join(f"| {step} | " + " | ".join(f"{values.get(n, float('nan')):.4f}" for n in names) + " |"
                     for step, values in sorted(by_step.items()))
    return f"""
## Evaluation during training

On `{training_args.eval_data_dir}`, split `{training_args.eval_split}` (step 0 = the base model):

| step | {" | ".join(names)} |
|---|{"---|" * len(names)}
{rows}
"""


def save_trained(model, tokenizer, merge_lora: bool, output_dir: Path, card: str = "") -> None:
    """The model's artifact (model.save: weights, tokenizer, spec, sentence-transformers files) and its card.

    Everything is written to a temporary directory first and then renamed into
    output_dir, the model's marker file last: a save that fails (a full disk) leaves
    no half a model under the final name.
    """
    for stale in output_dir.glob(".saving-*"):  # left by a save that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir, prefix=".saving-"))
    try:
        model.save(str(tmp), tokenizer, merge_lora=merge_lora)
        if card:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        for name in sorted(os.listdir(tmp), key=lambda name: name in MODEL_MARKERS):
            if (output_dir / name).is_dir():  # 1_Pooling/ of an earlier save
                shutil.rmtree(output_dir / name)
            os.replace(tmp / name, output_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved the model (loads with SentenceTransformer too), %s and %s to %s", TRAIN_LOG_FILE,
                LOSS_CURVE_FILE, output_dir)


def read_history(output_dir: Path, trainer) -> list[dict]:
    """The run's whole log (TRAIN_LOG_FILE): also the step-0 dev evaluation and the steps
    before a resume, which the Trainer's own log_history does not keep."""
    path = output_dir / TRAIN_LOG_FILE
    return json.loads(path.read_text()) if path.is_file() else trainer.state.log_history


def train(args, kind: ModelKind) -> Path:
    """The training run both drivers share: data, spec, model, Trainer, and (rank 0) the saved model."""
    model_args, data_args, training_args = args
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    recipe = run_recipe(args)
    main_process = rank() == 0  # under torchrun, rank 0 alone writes to the output dir
    # every rank decides (the same way) whether there is anything to train: none may wait for another
    if check_output_dir(output_dir, recipe, training_args.overwrite_output_dir, clean=main_process):
        logger.info("%s already holds the finished model of this recipe: nothing to train "
                    "(--overwrite_output_dir True trains it again)", output_dir)
        return output_dir

    # bad flags, bad data, an unreachable hub or a missing model are reported before anything is written
    spec = kind.spec(model_args, data_args)
    reading = training_reading(spec, data_args)  # how training cuts text: refused for a re-ranker here
    loss = build_loss(training_args.loss or kind.default_loss, training_args, kind.name)
    dataset = load_dataset(data_args, training_args.seed)
    dev = DevSet.load(training_args.eval_data_dir, training_args.eval_split) if training_args.eval_data_dir else None
    tokenizer = load_tokenizer(model_args.model_name_or_path, getattr(spec, "padding_side", "right"))
    collator = kind.collator(tokenizer, reading)
    model = kind.model(spec, model_args, loss)
    logger.info("training a %s on %d query groups, %d passage(s) each; base model %s",
                kind.name, len(dataset), data_args.train_group_size, model_args.model_name_or_path)
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        if main_process:
            write_json(output_dir / RECIPE_FILE, recipe)
        trainer = fit(model, dataset, collator, training_args, tokenizer, dev)
        if main_process and trainer.is_world_process_zero():  # under torchrun, rank 0 writes the model
            card = model_card(args, model.spec, len(dataset), read_history(output_dir, trainer))
            save_trained(model, tokenizer, model_args.merge_lora, output_dir, card)
    except BaseException:
        if created and output_dir.is_dir() and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a run that failed before writing anything leaves no empty directory
        raise
    return output_dir
