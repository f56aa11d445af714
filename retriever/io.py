"""File helpers shared by every driver: atomic writes and line-checked JSONL reading."""
import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


class DataError(ValueError):
    """Bad input data. The message names the file, the line and the field."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the message names the step."""


def check_finite(what: str, value, step: int) -> None:
    """Stop before a NaN/inf loss (or gradient norm) reaches the weights or a checkpoint."""
    value = float(value)
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"{what} is {value} at step {step}; stopping. Lower --learning_rate, raise --temperature, "
            "or check the data. No model is saved; earlier checkpoints are kept.")


@contextlib.contextmanager
def atomic_write(path, mode: str = "w"):
    """Open a temp file beside `path`; rename it onto `path` only if the block succeeds.

    A killed or failing run never leaves a half-written file under the final name,
    and an older complete file stays in place until the new one is whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~current_umask())  # the mode an ordinary write gives, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ordinary_modes(root) -> None:
    """Give the files and folders under root the modes an ordinary write gives (0666 / 0777 less
    the umask): some writers (mkstemp, mkdtemp, safetensors) leave 0600 / 0700, which keeps a model
    copied into a shared folder, or served by another user, unreadable."""
    umask = current_umask()
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o777 & ~umask)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_dir(path, keep_existing: bool = False):
    """A temporary directory beside `path`, renamed onto `path` only if the block succeeds (an
    older `path` is replaced then, never before): nothing half-written under the final name.

    keep_existing: a cache built once: when another process put a complete `path` there first,
    theirs is kept and this copy dropped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would keep others out
        if path.exists() and not keep_existing:
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        elif not path.exists():
            try:
                os.replace(tmp, path)
            except OSError:
                if not path.exists():  # not a lost race with another process
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path, obj) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def read_json(path, remedy: str = "write it again") -> dict:
    """A JSON object from a file; a file that is cut short, damaged or not an object is named, with `remedy`."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not readable as JSON ({e}); {remedy}") from None
    if not isinstance(values, dict):
        raise DataError(f"{path}: expected a JSON object; {remedy}")
    return values


def read_jsonl(path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; bad JSON raises DataError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{line_no}: not valid UTF-8 (byte {raw[e.start]:#04x} at column "
                                f"{e.start + 1}); re-save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: bad JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
            yield line_no, obj


def check_counts(args, *names: str, minimum: int = 1) -> None:
    """Count flags (depth, batch size, ...) below `minimum` are refused, naming the flag."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise ValueError(f"--{name} must be >= {minimum}; got {value}")


def require_text(obj: dict, field: str, where: str) -> str:
    """Return obj[field] as a non-empty string, or raise DataError naming `where` and the field."""
    if field not in obj:
        raise DataError(f"{where}: missing field '{field}'")
    value = obj[field]
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{field}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: field '{field}' is empty")
    return value


def require_id(obj: dict, field: str, where: str) -> str:
    """Return obj[field] as a string id (ints are accepted), or raise DataError."""
    if field not in obj:
        raise DataError(f"{where}: missing field '{field}'")
    value = obj[field]
    if not isinstance(value, (str, int)) or not str(value).strip():
        raise DataError(f"{where}: field '{field}' must be a non-empty string or integer")
    return str(value)
