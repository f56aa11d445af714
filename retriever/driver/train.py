"""Train a dense retriever.

    python -m retriever.driver.train --train_data groups.jsonl --output_dir runs/model \
        --recipe demo_cpu --max_steps 100
"""
import sys

from retriever.collator import TrainCollator
from retriever.driver import make_parser, run_cli, setup_logging
from retriever.modeling.encoder import EncoderModel
from retriever.training import TRAIN_ARGUMENTS, ModelKind, embedding_spec, train

RETRIEVER = ModelKind(name="retriever", spec=embedding_spec, model=EncoderModel.build, collator=TrainCollator,
                      default_loss="contrastive")


def main(argv=None):
    args = make_parser(TRAIN_ARGUMENTS, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    return train(args, RETRIEVER)


if __name__ == "__main__":
    sys.exit(run_cli(main))
