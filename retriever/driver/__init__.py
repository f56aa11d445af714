"""Command-line drivers: `python -m retriever.driver.<name> --help`."""
import logging
import os
import sys

from retriever.io import DataError, NonFiniteLossError

# Errors a user can cause and fix (bad files, paths, flags): one line, no traceback.
USER_ERRORS = (DataError, FileNotFoundError, NonFiniteLossError, ValueError, OSError)


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
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
