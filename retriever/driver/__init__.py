"""Command-line drivers: `python -m retriever.driver.<name> --help`."""
import logging
import os
import re
import sys
from pathlib import Path

from retriever.io import DataError, NonFiniteLossError
from retriever.recipe import RECIPE_FLAG, expand_recipes

# Errors a user can cause and fix (bad files, paths, flags): one line, no traceback.
USER_ERRORS = (DataError, FileNotFoundError, NonFiniteLossError, ValueError, OSError)


def make_parser(dataclass_types, doc: str):
    """The argument parser of a driver (HfArgumentParser over its dataclasses): `--help` opens
    with the first line of the driver's docstring, what the command does, then a short usage
    line, the rest of the docstring and every flag with its help and default. Every driver
    takes `--recipe FILE` (retriever.recipe) among its flags."""
    import argparse

    from transformers import HfArgumentParser

    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    class DriverParser(HfArgumentParser):
        def format_help(self):
            return (f"{summary}\n\n{super().format_help()}\n{RECIPE_FLAG} FILE: the flags of a JSON recipe "
                    "(retriever/recipes/), read where it stands: flags after it win.\n")

        def parse_args_into_dataclasses(self, args=None, **kwargs):
            args = sys.argv[1:] if args is None else list(args)
            return super().parse_args_into_dataclasses(args=expand_recipes(args, self), **kwargs)

    summary, _, rest = doc.strip().partition("\n")
    driver = Path(sys.argv[0])
    prog = f"python -m retriever.driver.{driver.stem}" if driver.parent.name == "driver" else None
    return DriverParser(dataclass_types, prog=prog, usage="%(prog)s [--flag value ...]  (flags below)",
                        description=rest.strip("\n") or None, formatter_class=Formatter)


def setup_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)


def run_cli(main) -> int:
    """Run a driver's main(); a user error prints `error: ...` and exits 2.

    RETRIEVER_DEBUG=1 shows the full traceback instead.
    """
    try:
        main()
    except USER_ERRORS as e:
        if os.environ.get("RETRIEVER_DEBUG"):
            raise
        print(f"error: {with_script_variables(str(e))}", file=sys.stderr)
        return 2
    return 0


def with_script_variables(message: str) -> str:
    """A message with each flag a calling script sets through a variable named by that variable too.

    The homework scripts pass RETRIEVER_SCRIPT_VARS="--train_data=TRAIN_DATA ...", so their
    user reads "TRAIN_DATA= (--train_data)", the name they can set.
    """
    for pair in os.environ.get("RETRIEVER_SCRIPT_VARS", "").split():
        flag, _, variable = pair.partition("=")
        if flag.startswith("--") and variable:
            message = re.sub(rf"{re.escape(flag)}(?![\w-])", f"{variable}= ({flag})", message)
    return message
