"""One training run, shared by the retriever and the re-ranker drivers: data, model,
Trainer (resuming a killed run), and the saved model with its text format."""
import logging
import os
import shutil
import tempfile
from pathlib import Path

from transformers import HfArgumentParser, set_seed

from retriever.arguments import DataArguments, ModelArguments
from retriever.collator import TextFormat
from retriever.data import TrainDataset, load_train_groups
from retriever.loss_log import LossLogCallback
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


def save_trained(model, tokenizer, model_args, fmt: TextFormat, output_dir: Path) -> None:
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
        save_trained(model, tokenizer, model_args, fmt, output_dir)
    return output_dir
