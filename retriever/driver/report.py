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
from typing import Optional

from retriever.io import DataError, atomic_write, write_json
from retriever.metrics import PER_QUERY, SIGNIFICANCE_LEVEL, format_table, paired_test
from retriever.driver import make_parser, run_cli

COLUMNS = ["system", "MRR@10", "nDCG@10", "Recall@100", "queries", "seconds"]


@dataclass
class ReportArguments:
    run_dir: str = field(metadata={"help": "Holds <set>/<system>/metrics.json."})
    systems: list[str] = field(default_factory=lambda: ["bm25", "zeroshot", "finetuned"], metadata={
        "help": "Sub-directories holding a metrics.json, one table row each, in this order."})
    sets: list[str] = field(default_factory=list, metadata={"help": "Evaluation sets (subdirectories)."})
    times: list[str] = field(default_factory=list, metadata={"help": "[set/]system=seconds, shown in the table."})
    notes: list[str] = field(default_factory=list, metadata={"help": "set=text printed under that set's table."})
    title: str = field(default="Results", metadata={"help": "Heading of report.md."})
    baseline: Optional[str] = field(default=None, metadata={
        "help": "The system every other is compared with (paired t-test of per-query nDCG@10); default: the first."})


def read_rows(set_dir: Path, systems: list[str], seconds: dict, set_name: str) -> list[dict]:
    rows = []
    for system in systems:
        path = set_dir / system / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; did the '{system}' stage run?")
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise DataError(f"{path}: not readable as JSON ({e}); was the '{system}' stage cut short?") from None
        row = {"set": set_name, "dir": system, **metrics}
        key = f"{set_name}/{system}" if set_name else system
        if key in seconds:  # the caller's stage time wins over the driver's own
            row["seconds"] = seconds[key]
        if "seconds" in row:
            try:
                row["seconds"] = round(float(row["seconds"]))
            except ValueError:
                raise ValueError(f"--times {key}={row['seconds']}: seconds must be a number") from None
        rows.append(row)
    return rows


def pairs(flag: str, values: list[str]) -> dict[str, str]:
    """{key: value} of a flag's KEY=VALUE words; a word without '=' is named in the error."""
    for value in values:
        if "=" not in value:
            raise ValueError(f"--{flag}: '{value}' is not KEY=VALUE")
    return dict(value.split("=", 1) for value in values)


def mark_significance(rows: list[dict], baseline: str) -> str:
    """Add to each row its nDCG@10 difference from the baseline row and whether a paired t-test
    over the queries finds it significant; returns the column's name."""
    column = f"{PER_QUERY} vs {baseline}"
    base = next((r for r in rows if r["dir"] == baseline), None)
    if base is None:
        raise ValueError(f"--baseline {baseline}: not one of --systems ({', '.join(r['dir'] for r in rows)})")
    for row in rows:
        if row is base:
            row[column] = "(baseline)"
        elif "per_query" not in row or "per_query" not in base:
            row[column] = "n/a (no per-query scores)"
        else:
            difference, p, n = paired_test(row["per_query"][PER_QUERY], base["per_query"][PER_QUERY])
            star = " **significant**" if p < SIGNIFICANCE_LEVEL else ""
            shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
            row[column] = f"{difference:+.4f} ({shown}, {n} q){star}"
    return column


def main(argv=None):
    args, = make_parser(ReportArguments, __doc__).parse_args_into_dataclasses(args=argv)
    run_dir = Path(args.run_dir)
    seconds, notes = pairs("times", args.times), pairs("notes", args.notes)
    sections, all_rows = [f"# {args.title}\n"], []
    for set_name in args.sets or [""]:
        rows = read_rows(run_dir / set_name, args.systems, seconds, set_name)
        column = mark_significance(rows, args.baseline or args.systems[0])
        all_rows += rows
        heading = f"## {set_name}\n\n" if set_name else ""
        note = f"\n{notes[set_name]}\n" if set_name in notes else ""
        sections.append(f"{heading}{format_table(rows, COLUMNS[:-1] + [column, COLUMNS[-1]])}\n{note}")
    sections.append(f"`{PER_QUERY} vs <baseline>`: the mean per-query difference from the baseline row, the p-value "
                    f"of a paired t-test over the queries (scipy's ttest_rel), **significant** when "
                    f"p < {SIGNIFICANCE_LEVEL}. With few queries, a real difference can fail to show.\n")
    report = "\n".join(sections)
    write_json(run_dir / "report.json", [{k: v for k, v in r.items() if k != "per_query"} for r in all_rows])
    with atomic_write(run_dir / "report.md") as f:
        f.write(report)
    print(report)
    return all_rows


if __name__ == "__main__":
    sys.exit(run_cli(main))
