"""Pipelines: a list of stages, each one driver run as its own process, the command a user would type.

The pipelines (`retriever.driver.run_all`, `retriever.driver.run_multitask`) read top to
bottom as the list of their stages. Each stage prints a heading and its command, runs
`python -m retriever.driver.<name> ...`, and is timed; every command is also written to
`<run_dir>/commands.sh`, so any stage can be run again by hand. A stage that fails ends the
pipeline with the driver's own exit code (its one-line error is already printed).

RETRIEVER_IN_PROCESS=1 runs each driver inside the pipeline's own process instead (the same
`python -m` entry point, through runpy): the same commands and files without paying each
driver's start (importing torch and transformers, 1-7 s a stage). The tests use it on tiny data.
"""
import os
import runpy
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from retriever.io import DataError

COMMANDS_FILE = "commands.sh"


class Pipeline:
    def __init__(self, run_dir, name: str):
        self.run_dir, self.name = Path(run_dir), name
        self.started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / COMMANDS_FILE, "w", encoding="utf-8") as f:
            f.write(f"# The commands python -m retriever.driver.{name} ran, in order "
                    f"({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC), from {Path.cwd()}\n")

    def stage(self, title: str) -> None:
        print(f"\n===== {title} =====", flush=True)

    def run(self, driver: str, *args) -> float:
        """Run one driver to the end; returns its wall time in seconds. A failure exits with its code."""
        words = [str(arg) for arg in args]
        command = shlex.join(["python", "-m", f"retriever.driver.{driver}", *words])
        print(f"[{self.name}] {command}", flush=True)
        with open(self.run_dir / COMMANDS_FILE, "a", encoding="utf-8") as f:
            f.write(command + "\n")
        started = time.monotonic()
        if os.environ.get("RETRIEVER_IN_PROCESS") == "1":
            code = run_in_process(f"retriever.driver.{driver}", words)
        else:
            code = subprocess.run([sys.executable, "-m", f"retriever.driver.{driver}", *words]).returncode
        if code != 0:  # the driver has said why, in one line
            raise SystemExit(code)
        return time.monotonic() - started

    def seconds(self) -> int:
        """Seconds since the pipeline started."""
        return round(time.monotonic() - self.started)


def run_in_process(module: str, words: list[str]) -> int:
    """`python -m module words...` inside this process; returns its exit code."""
    argv = sys.argv
    sys.argv = [module, *words]  # runpy puts the module's file first, as `python -m` does
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    finally:
        sys.argv = argv
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)  # sys.exit("message"), as the interpreter would print it
    return 1


def beir_dir(name: str, beside: Path, needs: str, what: str, hint: str) -> Path:
    """A BEIR directory given as a path, or as the name of one beside `beside` (e.g. `arguana` beside
    ../shared/data/scifact); it must hold `needs` (a file inside it), or the error says what to get."""
    path = Path(name)
    if not path.is_dir():
        path = beside / name
    if not (path / needs).is_file():
        raise DataError(f"no BEIR data at {path} ({needs} of {what} missing). {hint}")
    return path
