"""Training groups (Tevatron / MS MARCO layout) and BEIR evaluation data.

Training group, one per line or dataset row:
    {"query_id": "1", "query": "...",
     "positive_passages": [{"docid": "..", "title": "..", "text": ".."}, ...],
     "negative_passages": [...]}

BEIR directory: corpus.jsonl (_id, title, text), queries.jsonl (_id, text),
qrels/{split}.tsv (query-id, corpus-id, score; header line optional).

Each loader takes a local path, or a hub name for users who are online.
"""
import logging
import random
from pathlib import Path

from retriever.hub import require_hub
from retriever.io import DataError, read_jsonl, require_id, require_text

logger = logging.getLogger(__name__)

BEIR_DOWNLOAD = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
BEIR_SETS = ("msmarco", "trec-covid", "nfcorpus", "nq", "hotpotqa", "fiqa", "arguana", "webis-touche2020",
             "cqadupstack", "quora", "dbpedia-entity", "scidocs", "fever", "climate-fever", "scifact")


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


OFFLINE_TRAIN_DATA = ("Offline: make training groups from a local BEIR set with `python -m retriever.driver.mine "
                      "--data_dir ../shared/data/scifact --split train --output_file groups.jsonl` and train on "
                      "them with the CPU recipe (retriever/README.md, \"The offline route\").")


def iter_hub_rows(name: str, split: str):
    import datasets

    require_hub(name, "file or directory of training groups", "--train_data", OFFLINE_TRAIN_DATA)
    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as e:  # offline, unknown name, ...
        raise FileNotFoundError(
            f"'{name}' is neither a local file/directory nor a reachable hub dataset ({e}). "
            "Point --train_data at a local JSONL file in Tevatron layout. " + OFFLINE_TRAIN_DATA
        ) from e
    for k, record in enumerate(rows):
        yield f"{name}[{split}] row {k}", record


def load_train_groups(name_or_path: str, split: str = "train", need_negatives: bool = False) -> list[dict]:
    """Read and validate all groups. Groups without a positive are skipped with a count:
    they cannot teach anything, and real data (MS MARCO) has a few. With need_negatives
    (--train_group_size > 1), a group without negatives is an error naming its line."""
    groups, skipped = [], 0
    for where, record in iter_group_rows(name_or_path, split):
        check_group(record, where)
        if need_negatives and record["positive_passages"] and not record.get("negative_passages"):
            raise DataError(f"{where}: group has no negative passages; use --train_group_size 1 "
                            "(in-batch negatives only) or add negatives")
        if not record["positive_passages"]:
            skipped += 1
            continue
        groups.append(record)
    if skipped:
        logger.warning("%s: skipped %d groups with no positive passage", name_or_path, skipped)
    if not groups:
        raise DataError(f"{name_or_path}: no training group with a positive passage")
    return groups


class TrainDataset:
    """One item = a query and `group_size` passages: a positive first, then negatives. A map-style
    dataset (__len__, __getitem__: all torch's DataLoader asks), so reading data needs no torch.

    Sampling is seeded by (seed, epoch, index), so an item is the same whatever order
    the trainer asks for it in (a resumed run sees the same data as an uninterrupted
    one), and each epoch draws other negatives. The trainer passes the epoch in with
    `set_epoch` (retriever.trainer.DatasetEpochCallback).
    """

    def __init__(self, groups: list[dict], group_size: int = 10, seed: int = 42, epoch: int = 0):
        if group_size < 1:
            raise ValueError(f"train_group_size must be >= 1, got {group_size}")
        self.groups, self.group_size, self.seed, self.epoch = groups, group_size, seed, epoch
        n_neg = group_size - 1
        short = sum(len(g.get("negative_passages") or []) < n_neg for g in groups)
        if n_neg and short:
            logger.warning(
                "%d of %d groups have fewer than %d negatives: sampling those with replacement",
                short, len(groups), n_neg,
            )

    def __len__(self) -> int:
        return len(self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, idx: int) -> dict:
        group = self.groups[idx]
        rng = random.Random(self.seed * 1_000_003 + idx + self.epoch * 2**40)
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
        dataset = Path(data_dir).name.lower()
        get = (f"Get the BEIR '{dataset}' set ({BEIR_DOWNLOAD.format(name=dataset)}), unzip it so that "
               f"{data_dir}/{name} exists, or point" if dataset in BEIR_SETS else "Point")
        raise FileNotFoundError(f"{path} not found. {get} DATA_DIR / --data_dir at a BEIR directory "
                                "(corpus.jsonl, queries.jsonl, qrels/<split>.tsv; e.g. ../shared/data/scifact).")
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
    if not docs:
        raise DataError(f"{path}: holds no documents")
    return docs


def load_queries(data: str) -> dict[str, str]:
    if is_hub_name(data):
        return {str(r["_id"]): r["text"] for r in hub_beir(data, "queries")}
    path = beir_file(data, "queries.jsonl")
    queries, seen = {}, {}
    for line_no, r in read_jsonl(path):
        where = f"{path}:{line_no}"
        query_id = require_id(r, "_id", where)
        if query_id in seen:  # the later text would silently replace the first
            raise DataError(f"{where}: duplicate _id '{query_id}' (first on line {seen[query_id]})")
        seen[query_id] = line_no
        queries[query_id] = require_text(r, "text", where)
    return queries


def load_qrels(data: str, split: str = "test") -> dict[str, dict[str, int]]:
    """{query_id: {doc_id: relevance}} from qrels/<split>.tsv (or a hub qrels set)."""
    if is_hub_name(data):
        rows = hub_beir(f"{data}-qrels", split)
        return qrels_from_rows((str(r["query-id"]), str(r["corpus-id"]), r["score"]) for r in rows)
    path = Path(data) if Path(data).is_file() else beir_file(data, f"qrels/{split}.tsv")
    return read_qrels_tsv(path)


TREC_ITERATIONS = ("0", "Q0")


def read_qrels_tsv(path: Path) -> dict[str, dict[str, int]]:
    """qrels in BEIR layout (query-id, corpus-id, score; header optional) or TREC layout
    (qid, iteration 0/Q0, docid, rel; no header). The layout is decided once, from the
    header or the first row, and every row must follow it: a row with another number
    of fields, or a 4-field file whose second field is no TREC iteration, is an error
    naming the file and line (read as TREC, `q d 1 1` would score the doc id)."""
    def rows():
        layout = None  # "beir" or "trec", fixed by the first row
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                row = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
                if not row or row == [""]:
                    continue
                if line_no == 1 and row[0] == "query-id":
                    if len(row) != 3:
                        raise DataError(f"{path}:1: the BEIR header names {len(row)} fields; expected "
                                        "query-id, corpus-id, score")
                    layout = "beir"
                    continue
                if layout is None:
                    layout = {3: "beir", 4: "trec"}.get(len(row))
                    if layout is None:
                        raise DataError(f"{path}:{line_no}: expected 3 fields (query-id, corpus-id, score) or "
                                        f"4 (TREC: qid 0 docid rel), got {len(row)}")
                want = 3 if layout == "beir" else 4
                if len(row) != want:
                    raise DataError(f"{path}:{line_no}: {len(row)} fields where the file's "
                                    f"{'BEIR (query-id, corpus-id, score)' if want == 3 else 'TREC (qid 0 docid rel)'} "
                                    f"rows have {want}")
                if layout == "trec":
                    if row[1] not in TREC_ITERATIONS:
                        raise DataError(f"{path}:{line_no}: 4 fields, but field 2 is {row[1]!r}, not a TREC "
                                        "iteration (0 or Q0): write BEIR qrels as query-id, corpus-id, score")
                    row = [row[0], row[2], row[3]]
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

    require_hub(name, "BEIR directory", "--data_dir",
                "Offline: point DATA_DIR / --data_dir at a local BEIR directory (corpus.jsonl, queries.jsonl, "
                "qrels/), e.g. ../shared/data/scifact.")
    try:
        if name.endswith("-qrels"):
            return datasets.load_dataset(name, split=part)
        return datasets.load_dataset(name, part, split=part)
    except Exception as e:
        raise FileNotFoundError(
            f"could not load '{name}' ({part}) from the hub ({e}). Offline? Download the BEIR set "
            "and pass its local directory instead."
        ) from e
