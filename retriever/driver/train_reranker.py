"""Train a cross-encoder re-ranker on the same training groups as the retriever.

    python -m retriever.driver.train_reranker --train_data groups.jsonl --output_dir runs/reranker \
        --recipe reranker_cpu --max_steps 100

Each query's group (positive first, hard negatives after) is scored pair by pair;
the loss is a softmax cross-entropy over the group (--loss listwise). A pair is at most
query_max_len + passage_max_len tokens.
"""
import sys

from retriever.collator import RerankCollator
from retriever.driver import make_parser, run_cli, setup_logging
from retriever.modeling.reranker import RerankerModel
from retriever.spec import EmbeddingSpec
from retriever.training import TRAIN_ARGUMENTS, ModelKind, reranker_spec, train

RERANKER = ModelKind(name="reranker", spec=reranker_spec, model=RerankerModel.build, collator=RerankCollator,
                     default_loss="listwise")


def main(argv=None):
    args = make_parser(TRAIN_ARGUMENTS, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    model_args, data_args, training_args = args
    ignored = {"--temperature": model_args.temperature != EmbeddingSpec.temperature,
               "--self_paced": training_args.self_paced, "--task_instructions": bool(data_args.task_instructions),
               "--negatives_cross_device": training_args.negatives_cross_device,
               "--grad_cache": training_args.grad_cache, "--eval_data_dir": bool(training_args.eval_data_dir)}
    if any(ignored.values()):
        raise ValueError(f"{', '.join(k for k, v in ignored.items() if v)}: bi-encoder flags the re-ranker does "
                         "not use (it scores each (query, passage) pair and trains with a listwise loss)")
    bi_encoder = [f"--{name}" for name in ("query_template", "passage_template", "append_eos", "normalize")
                  if getattr(model_args, name) is not None]
    if bi_encoder:
        raise ValueError(f"{', '.join(bi_encoder)}: for the bi-encoder: the re-ranker reads query + passage + EOS "
                         "(use --query_prefix / --passage_prefix)")
    if data_args.train_group_size < 2:
        raise ValueError("the re-ranker needs --train_group_size >= 2 (a positive and a negative)")
    return train(args, RERANKER)


if __name__ == "__main__":
    sys.exit(run_cli(main))
