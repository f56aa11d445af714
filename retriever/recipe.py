"""Recipes: a run's settings as a file the drivers read, `--recipe FILE`.

A recipe is a JSON object of flags and values, e.g. `{"learning_rate": 0.001, "lora": true}`
(retriever/recipes/). Keys that begin with "#" are comments. The recipe stands where
`--recipe FILE` stands on the command line: flags after it win over it (a script's
EXTRA_ARGS), flags before it lose. It is read strictly: a flag the driver does not take
(with the nearest one it does), a value of the wrong JSON type or null is an error naming
the file and the key.
"""
import difflib
import json
from pathlib import Path

RECIPE_FLAG = "--recipe"


def expand_recipes(args: list[str], parser) -> list[str]:
    """The command line with every `--recipe FILE` replaced by the flags the file holds."""
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == RECIPE_FLAG or arg.startswith(RECIPE_FLAG + "="):
            path = arg.partition("=")[2] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            if not path:
                raise ValueError(f"{RECIPE_FLAG} needs a file (a JSON recipe, e.g. retriever/recipes/demo_cpu.json)")
            out += recipe_flags(path, parser)
            i += 1 if "=" in arg else 2
            continue
        out.append(arg)
        i += 1
    return out


def recipe_flags(path, parser) -> list[str]:
    """The flags of one recipe file, as command-line words, checked against the driver's parser."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise FileNotFoundError(f"{RECIPE_FLAG} {path}: cannot be read ({e.strerror})") from None
    except ValueError as e:
        raise ValueError(f"{path}: not a JSON recipe ({e})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a recipe is a JSON object of flags and values")
    actions = {option[2:]: action for action in parser._actions for option in action.option_strings
               if option.startswith("--")}
    words = []
    for key, value in values.items():
        if key.startswith("#"):
            continue
        if key not in actions:
            near = difflib.get_close_matches(key, list(actions), n=1)
            raise ValueError(f"{path}: '{key}' is not a flag of this driver" + (
                f" (did you mean '{near[0]}'?)" if near else "") + "; --help lists them")
        words += [f"--{key}", *as_words(value, actions[key], f"{path}: '{key}'")]
    return words


def as_words(value, action, where: str) -> list[str]:
    """A JSON value as the words of its flag: true/false for booleans, numbers for numbers, a list
    for a flag that takes several values; anything else is an error."""
    many = action.nargs in ("+", "*")
    items = value if many and isinstance(value, list) else [value]
    if many != isinstance(value, list):
        raise ValueError(f"{where} must be {'a JSON list' if many else 'one value, not a list'}; "
                         f"got {json.dumps(value)}")
    kind = getattr(action.type, "__name__", "str")
    for item in items:
        ok = {"string_to_bool": isinstance(item, bool),
              "int": isinstance(item, int) and not isinstance(item, bool),
              "float": isinstance(item, (int, float)) and not isinstance(item, bool)}.get(kind, isinstance(item, str))
        if not ok:
            wanted = {"string_to_bool": "a JSON boolean (true/false)", "int": "an integer",
                      "float": "a number"}.get(kind, "a string")
            raise ValueError(f"{where} must be {wanted}; got {json.dumps(item)}")
    return [str(item) for item in items]
