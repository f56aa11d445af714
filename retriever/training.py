"""One training run, shared by the retriever and the re-ranker drivers: data, model,
Trainer (resuming a killed run), and the saved model with its text format."""
import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path

from transformers import HfArgumentParser, set_seed

from retriever.arguments import DataArguments, ModelArguments
from retriever.collator import TextFormat
from retriever.data import TrainDataset, load_train_groups
from retriever.loss_log import LossLogCallback, quarter_means
from retriever.modeling.loading import load_tokenizer
from retriever.multitask import parse_train_file, read_task_instructions
from retriever.trainer import RetrieverTrainer, RetrieverTrainingArguments, last_complete_checkpoint

logger = logging.getLogger(__name__)


def parse_args(argv=None):
    parser = HfArgumentParser((ModelArguments, DataArguments, RetrieverTrainingArguments))
    return parser.parse_args_into_dataclasses(args=argv)


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


def text_format(model_args, data_args) -> TextFormat:
    """How the model will read text: written beside it, reused by encode, mine and rerank."""
    instructions = read_task_instructions(data_args.task_instructions) if data_args.task_instructions else {}
    return TextFormat(data_args.query_template, data_args.passage_template, data_args.query_prefix,
                      data_args.passage_prefix, data_args.append_eos, data_args.query_max_len,
                      data_args.passage_max_len, model_args.padding_side, instructions)


def fit(model, dataset, collator, training_args) -> RetrieverTrainer:
    """Train with the Trainer, resuming a killed run from its last checkpoint."""
    output_dir = Path(training_args.output_dir)
    trainer = RetrieverTrainer(model=model, args=training_args, train_dataset=dataset,
                               data_collator=collator, callbacks=[LossLogCallback(str(output_dir))])
    resume = training_args.resume_from_checkpoint
    if resume is None and output_dir.is_dir():
        resume = last_complete_checkpoint(output_dir)  # pick up a killed run automatically
        if resume:
            logger.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


# Files whose presence makes a directory a model (loading.resolve_model_path): moved in last.
MODEL_MARKERS = ("config.json", "adapter_config.json")


POOLING_NAMES = {"last": "last-token", "mean": "mean", "cls": "first-token"}
# Flags that name places or runs, not the recipe: left out of the model card's recipe table.
NOT_RECIPE = {"output_dir", "logging_dir", "run_name", "train_data", "train_files", "model_name_or_path"}


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


def model_card(args, fmt: TextFormat, n_groups: int, history: list[dict]) -> str:
    """README.md of a trained model: what it is, what it was trained on and how, its final loss."""
    model_args, data_args, training_args = args
    losses = [h["loss"] for h in history if "loss" in h]
    first, last = quarter_means(losses) if losses else (float("nan"), float("nan"))
    data = " ".join(data_args.train_files) if data_args.train_files else data_args.train_data
    recipe = "\n".join(f"| `--{k}` | `{v}` |" for k, v in sorted(non_default_flags(*args).items()))
    return f"""# Dense retriever trained with `retriever`

- base model: `{model_args.model_name_or_path}`
- training data: `{data}` ({n_groups} query groups of {data_args.train_group_size} passages)
- embedding: {POOLING_NAMES[model_args.pooling]} pooling{", L2-normalised" if model_args.normalize else ""}; \
similarity = q · p / {model_args.temperature}
- text: query template `{fmt.template("query")}`, passage template `{fmt.template("passage")}`, \
EOS appended: {fmt.append_eos}; at most {fmt.query_max_len} / {fmt.passage_max_len} tokens
- training: {len(losses)} logged steps; final loss {losses[-1] if losses else float("nan"):.4f} \
(mean of the first quarter of steps {first:.4f}, of the last quarter {last:.4f}); \
curve in `loss_curve.png`, every step in `train_log.json`

## Recipe: every flag that differs from its default

| flag | value |
|---|---|
{recipe}

## Use

```bash
python -m retriever.driver.encode --model_name_or_path THIS_DIR --data_dir BEIR_DIR --output_file emb/corpus.npz
python -m retriever.driver.encode --model_name_or_path THIS_DIR --data_dir BEIR_DIR --encode_is_query \\
    --output_file emb/queries.npz
python -m retriever.driver.search --query_embeddings emb/queries.npz --corpus_embeddings emb/corpus.npz \\
    --qrels BEIR_DIR
```

Encode reads `text_format.json` and `retriever_config.json` here, so texts are shaped and pooled as in training.
"""


def save_trained(model, tokenizer, model_args, fmt: TextFormat, output_dir: Path, card: str = "") -> None:
    """Model, tokenizer and the text format encode, mine and rerank must reuse.

    Everything is written to a temporary directory first and then renamed into
    output_dir, the model's marker file last: a save that fails (a full disk) leaves
    no half a model under the final name.
    """
    tmp = Path(tempfile.mkdtemp(dir=output_dir, prefix=".saving-"))
    try:
        model.save(str(tmp), base_model=model_args.model_name_or_path, merge_lora=model_args.merge_lora)
        tokenizer.save_pretrained(str(tmp))
        fmt.save(tmp)
        if card:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        for name in sorted(os.listdir(tmp), key=lambda name: name in MODEL_MARKERS):
            os.replace(tmp / name, output_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("saved model, tokenizer, train_log.json and loss_curve.png to %s", output_dir)


def train(args, build_model, build_collator, what: str = "a retriever") -> Path:
    """The training run both drivers share: data, model, Trainer, and (rank 0) the saved model.

    build_model(model_args, training_args) and build_collator(tokenizer, fmt)
    are what differs between the retriever and the re-ranker.
    """
    model_args, data_args, training_args = args
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    dataset = load_dataset(data_args, training_args.seed)  # bad data is reported before a model is loaded
    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.padding_side)
    fmt = text_format(model_args, data_args)
    collator = build_collator(tokenizer, fmt)
    model = build_model(model_args, training_args)
    logger.info("training %s on %d groups of %d passages; base model %s",
                what, len(dataset), data_args.train_group_size, model_args.model_name_or_path)
    trainer = fit(model, dataset, collator, training_args)
    if trainer.is_world_process_zero():  # under torchrun, rank 0 writes the model
        history = [h for h in trainer.state.log_history if "loss" in h]
        card = model_card(args, fmt, len(dataset), history)
        save_trained(model, tokenizer, model_args, fmt, output_dir, card)
    return output_dir
