"""Collect each system's metrics.json into one table (Markdown + JSON).

    python -m retriever.driver.report --run_dir runs/demo --systems bm25 zeroshot finetuned
"""
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from retriever.io import atomic_write, write_json
from retriever.metrics import format_table
from retriever.driver import run_cli

COLUMNS = ["system", "MRR@10", "nDCG@10", "Recall@100", "seconds"]


@dataclass
class ReportArguments:
    run_dir: str = field(metadata={"help": "Each system's metrics.json is in <run_dir>/<system>/."})
    systems: list[str] = field(default_factory=lambda: ["bm25", "zeroshot", "finetuned"])
    times: list[str] = field(default_factory=list, metadata={"help": "system=seconds, shown in the table."})
    title: str = field(default="Results")


def main(argv=None):
    args, = HfArgumentParser(ReportArguments).parse_args_into_dataclasses(args=argv)
    run_dir = Path(args.run_dir)
    seconds = dict(t.split("=", 1) for t in args.times)
    rows = []
    for system in args.systems:
        path = run_dir / system / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; did the '{system}' stage run?")
        row = json.loads(path.read_text())
        if system in seconds:
            row["seconds"] = int(float(seconds[system]))
        rows.append(row)
    table = format_table(rows, COLUMNS)
    write_json(run_dir / "report.json", rows)
    with atomic_write(run_dir / "report.md") as f:
        f.write(f"# {args.title}\n\n{table}\n")
    print(table)
    return rows


if __name__ == "__main__":
    sys.exit(run_cli(main))
