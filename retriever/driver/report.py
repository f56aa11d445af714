"""Collect each system's metrics.json into tables (Markdown + JSON), one table per evaluation set.

    python -m retriever.driver.report --run_dir runs/demo --sets scifact arguana \
        --systems bm25 zeroshot-last finetuned --times scifact/bm25=10

Reads <run_dir>/<set>/<system>/metrics.json (or <run_dir>/<system>/ without --sets);
writes <run_dir>/report.md and report.json (one row per set and system).
"""
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from retriever.io import atomic_write, write_json
from retriever.metrics import format_table
from retriever.driver import make_parser, run_cli

COLUMNS = ["system", "MRR@10", "nDCG@10", "Recall@100", "seconds"]


@dataclass
class ReportArguments:
    run_dir: str = field(metadata={"help": "Holds <set>/<system>/metrics.json."})
    systems: list[str] = field(default_factory=lambda: ["bm25", "zeroshot", "finetuned"], metadata={
        "help": "Sub-directories holding a metrics.json, one table row each, in this order."})
    sets: list[str] = field(default_factory=list, metadata={"help": "Evaluation sets (subdirectories)."})
    times: list[str] = field(default_factory=list, metadata={"help": "[set/]system=seconds, shown in the table."})
    notes: list[str] = field(default_factory=list, metadata={"help": "set=text printed under that set's table."})
    title: str = field(default="Results", metadata={"help": "Heading of report.md."})


def read_rows(set_dir: Path, systems: list[str], seconds: dict, set_name: str) -> list[dict]:
    rows = []
    for system in systems:
        path = set_dir / system / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; did the '{system}' stage run?")
        row = {"set": set_name, **json.loads(path.read_text())}
        key = f"{set_name}/{system}" if set_name else system
        if key in seconds:
            row["seconds"] = int(float(seconds[key]))
        rows.append(row)
    return rows


def main(argv=None):
    args, = make_parser(ReportArguments, __doc__).parse_args_into_dataclasses(args=argv)
    run_dir = Path(args.run_dir)
    seconds = dict(t.split("=", 1) for t in args.times)
    notes = dict(n.split("=", 1) for n in args.notes)
    sections, all_rows = [f"# {args.title}\n"], []
    for set_name in args.sets or [""]:
        rows = read_rows(run_dir / set_name, args.systems, seconds, set_name)
        all_rows += rows
        heading = f"## {set_name}\n\n" if set_name else ""
        note = f"\n{notes[set_name]}\n" if set_name in notes else ""
        sections.append(f"{heading}{format_table(rows, COLUMNS)}\n{note}")
    report = "\n".join(sections)
    write_json(run_dir / "report.json", all_rows)
    with atomic_write(run_dir / "report.md") as f:
        f.write(report)
    print(report)
    return all_rows


if __name__ == "__main__":
    sys.exit(run_cli(main))
