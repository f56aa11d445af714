"""Command-line drivers: `python -m retriever.driver.<name> --help`."""
import logging


def setup_logging() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
