"""Training groups (Tevatron / MS MARCO layout) and BEIR evaluation data.

Training group, one per line or dataset row:
    {"query_id": "1", "query": "...",
     "positive_passages": [{"docid": "..", "title": "..", "text": ".."}, ...],
     "negative_passages": [...]}

BEIR directory: corpus.jsonl (_id, title, text), queries.jsonl (_id, text),
qrels/{split}.tsv (query-id, corpus-id, score; header line optional).

Each loader takes a local path, or a hub name for users who are online.
"""
import csv
import logging
import random
from pathlib import Path

from torch.utils.data import Dataset

from retriever.io import DataError, read_jsonl, require_id, require_text

logger = logging.getLogger(__name__)

MSMARCO_HUB = "Tevatron/msmarco-passage"
FIQA_HUB = "BeIR/fiqa"
BEIR_DOWNLOAD = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


# ---- training groups -------------------------------------------------------------
def check_passages(record: dict, field: str, where: str) -> list[dict]:
    passages = record.get(field, [])
    if not isinstance(passages, list):
        raise DataError(f"{where}: field '{field}' must be a list of passages")
    for k, p in enumerate(passages):
        if not isinstance(p, dict):
            raise DataError(f"{where}: {field}[{k}] must be an object with 'text'")
        require_text(p, "text", f"{where}: {field}[{k}]")
    return passages


def check_group(record: dict, where: str) -> dict:
    """Validate one training group; DataError names `where` and the field."""
    require_text(record, "query", where)
    if "positive_passages" not in record:
        raise DataError(f"{where}: missing field 'positive_passages'")
    check_passages(record, "positive_passages", where)
    check_passages(record, "negative_passages", where)
    return record


def iter_group_rows(name_or_path: str, split: str):
    """(where, record) for every group in a local file/directory or a hub dataset."""
    path = Path(name_or_path)
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        yield from iter_saved_dataset_rows(path, split)  # a `datasets` dataset saved to disk
        return
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(f"{path}: directory holds no *.jsonl training files")
    elif path.exists() or name_or_path.endswith((".jsonl", ".json")):
        files = [path]  # read_jsonl names a missing file
    else:
        yield from iter_hub_rows(name_or_path, split)
        return
    for file in files:
        for line_no, record in read_jsonl(file):
            yield f"{file}:{line_no}", record


def iter_saved_dataset_rows(path: Path, split: str):
    import datasets

    rows = datasets.load_from_disk(str(path))
    if isinstance(rows, datasets.DatasetDict):
        rows = rows[split]
    for k, record in enumerate(rows):
        yield f"{path}[{split}] row {k}", record


def iter_hub_rows(name: str, split: str):
    import datasets

    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as e:  # offline, unknown name, ...
        raise FileNotFoundError(
            f"'{name}' is neither a local file/directory nor a reachable hub dataset ({e}). "
            "Point --train_data at a local JSONL file in Tevatron layout."
        ) from e
    for k, record in enumerate(rows):
        yield f"{name}[{split}] row {k}", record


def load_train_groups(name_or_path: str, split: str = "train") -> list[dict]:
    """Read and validate all groups. Groups without a positive are skipped with a count:
    they cannot teach anything, and real data (MS MARCO) has a few."""
    groups, skipped = [], 0
    for where, record in iter_group_rows(name_or_path, split):
        check_group(record, where)
        if not record["positive_passages"]:
            skipped += 1
            continue
        groups.append(record)
    if skipped:
        logger.warning("%s: skipped %d groups with no positive passage", name_or_path, skipped)
    if not groups:
        raise DataError(f"{name_or_path}: no training group with a positive passage")
    return groups


class TrainDataset(Dataset):
    """One item = a query and `group_size` passages: a positive first, then negatives.

    Sampling is seeded by (seed, index), so an item is the same whatever order the
    trainer asks for it in: a resumed run sees the same data as an uninterrupted one.
    """

    def __init__(self, groups: list[dict], group_size: int = 10, seed: int = 42):
        if group_size < 1:
            raise ValueError(f"train_group_size must be >= 1, got {group_size}")
        self.groups, self.group_size, self.seed = groups, group_size, seed
        n_neg = group_size - 1
        short = sum(len(g.get("negative_passages") or []) < n_neg for g in groups)
        if n_neg and short:
            logger.warning(
                "%d of %d groups have fewer than %d negatives: sampling those with replacement",
                short, len(groups), n_neg,
            )

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, idx: int) -> dict:
        group = self.groups[idx]
        rng = random.Random(self.seed * 1_000_003 + idx)
        positive = rng.choice(group["positive_passages"])
        negatives = list(group.get("negative_passages") or [])
        n_neg = self.group_size - 1
        if n_neg and not negatives:
            raise DataError(
                f"group {idx} (query_id {group.get('query_id')!r}) has no negative passages; "
                "use --train_group_size 1 (in-batch negatives only) or add negatives"
            )
        if len(negatives) >= n_neg:
            chosen = rng.sample(negatives, n_neg)
        else:
            chosen = [rng.choice(negatives) for _ in range(n_neg)]
        return {"query": group["query"], "passages": [positive, *chosen], "task": group.get("task", "")}

    @property
    def tasks(self) -> list[str]:
        """The task of each item (multi-task training batches by it)."""
        return [g.get("task", "") for g in self.groups]


# ---- BEIR evaluation data ------------------------------------------------------------
def beir_file(data_dir: str, name: str) -> Path:
    """Path of corpus.jsonl / queries.jsonl / qrels/<split>.tsv, with a helpful error."""
    path = Path(data_dir) / name
    if not path.exists():
        dataset = Path(data_dir).name
        raise FileNotFoundError(
            f"{path} not found. Get the BEIR '{dataset}' set ({BEIR_DOWNLOAD.format(name=dataset)}), "
            f"unzip it so that {data_dir}/corpus.jsonl exists, or point DATA_DIR / --data_dir "
            "at another BEIR directory (e.g. ../shared/data/scifact)."
        )
    return path


def is_hub_name(data: str) -> bool:
    return not Path(data).exists() and data.count("/") == 1 and not data.startswith((".", "/"))


def load_corpus(data: str, corpus_file: str = None) -> list[dict]:
    """[{"id", "title", "text"}] from a BEIR directory (or an explicit corpus file)."""
    if corpus_file is None and is_hub_name(data):
        return [{"id": str(r["_id"]), "title": r.get("title", ""), "text": r["text"]}
                for r in hub_beir(data, "corpus")]
    path = Path(corpus_file) if corpus_file else beir_file(data, "corpus.jsonl")
    docs, seen = [], {}
    for line_no, r in read_jsonl(path):
        where = f"{path}:{line_no}"
        doc_id = require_id(r, "_id", where)
        if doc_id in seen:
            raise DataError(f"{where}: duplicate _id '{doc_id}' (first on line {seen[doc_id]})")
        seen[doc_id] = line_no
        docs.append({"id": doc_id, "title": r.get("title") or "", "text": require_text(r, "text", where)})
    return docs


def load_queries(data: str) -> dict[str, str]:
    if is_hub_name(data):
        return {str(r["_id"]): r["text"] for r in hub_beir(data, "queries")}
    path = beir_file(data, "queries.jsonl")
    queries = {}
    for line_no, r in read_jsonl(path):
        where = f"{path}:{line_no}"
        query_id = require_id(r, "_id", where)
        queries[query_id] = require_text(r, "text", where)
    return queries


def load_qrels(data: str, split: str = "test") -> dict[str, dict[str, int]]:
    """{query_id: {doc_id: relevance}} from qrels/<split>.tsv (or a hub qrels set)."""
    if is_hub_name(data):
        rows = hub_beir(f"{data}-qrels", split)
        return qrels_from_rows((str(r["query-id"]), str(r["corpus-id"]), r["score"]) for r in rows)
    path = Path(data) if Path(data).is_file() else beir_file(data, f"qrels/{split}.tsv")
    return read_qrels_tsv(path)


def read_qrels_tsv(path: Path) -> dict[str, dict[str, int]]:
    def rows():
        with open(path, encoding="utf-8") as f:
            for line_no, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
                if not row or (line_no == 1 and row[0] == "query-id"):
                    continue
                if len(row) == 4:  # TREC layout: qid 0 docid rel
                    row = [row[0], row[2], row[3]]
                if len(row) != 3:
                    raise DataError(f"{path}:{line_no}: expected 3 tab-separated fields "
                                    f"(query-id, corpus-id, score), got {len(row)}")
                try:
                    score = int(row[2])
                except ValueError:
                    raise DataError(f"{path}:{line_no}: field 'score' is not an integer: {row[2]!r}") from None
                yield row[0], row[1], score

    return qrels_from_rows(rows())


def qrels_from_rows(rows) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for query_id, doc_id, score in rows:
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels


def hub_beir(name: str, part: str):
    import datasets

    try:
        if name.endswith("-qrels"):
            return datasets.load_dataset(name, split=part)
        return datasets.load_dataset(name, part, split=part)
    except Exception as e:
        raise FileNotFoundError(
            f"could not load '{name}' ({part}) from the hub ({e}). Offline? Download the BEIR set "
            "and pass its local directory instead."
        ) from e
