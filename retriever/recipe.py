"""Recipes: a run's settings as a file the drivers read, `--recipe FILE`.

A recipe is a JSON object of flags and values, e.g. `{"learning_rate": 0.001, "lora": true}`,
given as a path or as the name of one of the project's own (`--recipe demo_cpu` reads
retriever/recipes/demo_cpu.json). Keys that begin with "#" are comments. The recipe stands where
`--recipe FILE` stands on the command line: flags after it win over it (a script's
EXTRA_ARGS), flags before it lose. It is read strictly: a flag the driver does not take
(with the nearest one it does), a key given twice, a value of the wrong JSON type or null is
an error naming the file and the key.
"""
import difflib
import json
import re
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
                raise ValueError(f"{RECIPE_FLAG} needs a file (a JSON recipe, e.g. retriever/recipes/demo_cpu.json) or "
                             f"the name of one there ({', '.join(sorted(p.stem for p in RECIPES_DIR.glob('*.json')))})")
            out += recipe_flags(path, parser)
            i += 1 if "=" in arg else 2
            continue
        out.append(arg)
        i += 1
    return out


# The recipes that come with the project: `--recipe demo_cpu` names retriever/recipes/demo_cpu.json.
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


def recipe_path(name: str) -> Path:
    """A recipe file: a path, or the name of one of the project's recipes (retriever/recipes/NAME.json)."""
    path = Path(name)
    packaged = RECIPES_DIR / f"{path.name.removesuffix('.json')}.json"
    if not path.exists() and path.parent == Path(".") and packaged.is_file():
        return packaged
    return path


def recipe_flags(path, parser) -> list[str]:
    """The flags of one recipe file, as command-line words, checked against the driver's parser."""
    path = recipe_path(str(path))
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKey as e:
        lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(rf'{re.escape(json.dumps(e.key))}\s*:', text)]
        raise ValueError(f"{path}: '{e.key}' is given twice (lines {lines[0]} and {lines[-1]}); keep one") from None
    except OSError as e:
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.json")))
        raise FileNotFoundError(f"{RECIPE_FLAG} {path}: cannot be read ({e.strerror}); a recipe is a JSON file or the "
                                f"name of one of the project's ({known})") from None
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


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple]) -> dict:
    """json's object_pairs_hook: a key given twice is an error, not "the later one wins"."""
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise DuplicateKey(key)
    return dict(pairs)


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
