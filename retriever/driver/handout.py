"""Write the student's handout: the project with the four graded methods left to implement.

    python -m retriever.driver.handout --output_dir handout/

The copy has, in place of each graded region of retriever/modeling/encoder.py, a TODO
saying what to return and `raise NotImplementedError`; its README opens with what to
implement, how to run the graders' tests (tests/modeling/test_graded.py: they fail on the
handout and pass on a solution) and the three homework scripts.
"""
import logging
import sys
from dataclasses import dataclass, field

from retriever.driver import make_parser, run_cli, setup_logging
from retriever.handout import GRADED_FILES, GRADED_TESTS, write_handout

logger = logging.getLogger(__name__)


@dataclass
class HandoutArguments:
    output_dir: str = field(metadata={"help": "New directory for the handout (must not exist, or be empty)."})


def main(argv=None):
    (args,) = make_parser(HandoutArguments, __doc__).parse_args_into_dataclasses(args=argv)
    setup_logging()
    names = write_handout(args.output_dir)
    logger.info("wrote the handout to %s: %d regions left to implement in %s (%s); graded tests: %s",
                args.output_dir, len(names), ", ".join(GRADED_FILES), ", ".join(names), GRADED_TESTS)


if __name__ == "__main__":
    sys.exit(run_cli(main))
