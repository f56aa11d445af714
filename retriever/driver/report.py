"""Collect each system's metrics.json into tables (Markdown + JSON), one table per evaluation set.

    python -m retriever.driver.report --run_dir runs/demo --sets scifact arguana \
        --systems bm25 zeroshot-last finetuned --times scifact/bm25=10

Reads <run_dir>/<set>/<system>/metrics.json (or <run_dir>/<system>/ without --sets);
writes <run_dir>/report.md and report.json (one row per set and system). report.md opens with
the date and the machine (CPU model, cores, the vector units that set CPU speed, GPUs), since
every `seconds` depends on them, and marks the rows whose embeddings came from the cache.
"""
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from retriever.io import DataError, atomic_write, write_json
from retriever.metrics import PER_QUERY, SIGNIFICANCE_LEVEL, format_table, paired_test
from retriever.driver import make_parser, run_cli

COLUMNS = ["system", "MRR@10", "nDCG@10", "Recall@100", "queries", "seconds"]
# /proc/cpuinfo flags that decide CPU speed here: fp32 matmuls (AVX2, AVX-512), bf16 (AVX512-BF16, AMX)
CPU_UNITS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX"}


@dataclass
class ReportArguments:
    run_dir: str = field(metadata={"help": "Holds <set>/<system>/metrics.json."})
    systems: list[str] = field(default_factory=lambda: ["bm25", "zeroshot", "finetuned"], metadata={
        "help": "Sub-directories holding a metrics.json, one table row each, in this order."})
    sets: list[str] = field(default_factory=list, metadata={"help": "Evaluation sets (subdirectories)."})
    times: list[str] = field(default_factory=list, metadata={"help": "[set/]system=seconds, shown in the table."})
    notes: list[str] = field(default_factory=list, metadata={"help": "set=text printed under that set's table."})
    title: str = field(default="Results", metadata={"help": "Heading of report.md."})
    summary: str = field(default="", metadata={"help": "Text under the heading, after the date and machine line."})
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


def describe_machine() -> str:
    """'<CPU model>, <n> cores (<vector units>), <GPUs>' of the machine this runs on."""
    try:
        lines = [line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line]
    except OSError:  # not Linux
        lines = []
    fields = {key.strip(): value.strip() for key, value in lines}  # the last CPU's; all are alike
    cpu = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    units = [name for flag, name in CPU_UNITS.items() if flag in flags]
    gpus = []
    if shutil.which("nvidia-smi"):
        try:
            listed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                    text=True, timeout=30)
            if listed.returncode == 0:
                gpus = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return (f"{cpu}, {cores} cores" + (f" ({', '.join(units)})" if units else "")
            + (f", GPU: {', '.join(gpus)}" if gpus else ", no NVIDIA GPU"))


def seconds_cell(row: dict) -> str:
    """A row's seconds as report.md shows them: marked when its embeddings were read from the cache."""
    if "seconds" not in row:
        return ""
    reused = row.get("reused_embeddings") or []
    if len(reused) > 1:
        return f"{row['seconds']} (cached)"
    return f"{row['seconds']} ({reused[0]} embeddings cached)" if reused else str(row["seconds"])


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
            ours, theirs = row["per_query"][PER_QUERY], base["per_query"][PER_QUERY]
            difference, p, n = paired_test(ours, theirs)
            star = " **significant**" if p < SIGNIFICANCE_LEVEL else ""
            shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
            row[column] = f"{difference:+.4f} ({shown}, {n} q){star}"
            if set(ours) != set(theirs):  # its mean is over other queries than the baseline's: not comparable as is
                row[column] += (f"; **other queries**: {len(ours)} scored here, {len(theirs)} for {baseline}, "
                                f"compared on the {n} in common")
    return column


def main(argv=None):
    args, = make_parser(ReportArguments, __doc__).parse_args_into_dataclasses(args=argv)
    run_dir = Path(args.run_dir)
    seconds, notes = pairs("times", args.times), pairs("notes", args.notes)
    run_on = f"Run on {datetime.now(timezone.utc):%Y-%m-%d} (UTC) on {describe_machine()}."
    sections, all_rows = [f"# {args.title}\n\n{run_on}" + (f" {args.summary}" if args.summary else "") + "\n"], []
    for set_name in args.sets or [""]:
        rows = read_rows(run_dir / set_name, args.systems, seconds, set_name)
        column = mark_significance(rows, args.baseline or args.systems[0])
        all_rows += rows
        heading = f"## {set_name}\n\n" if set_name else ""
        note = f"\n{notes[set_name]}\n" if set_name in notes else ""
        shown = [{**row, "seconds": seconds_cell(row)} for row in rows]
        sections.append(f"{heading}{format_table(shown, COLUMNS[:-1] + [column, COLUMNS[-1]])}\n{note}")
    if any(row.get("reused_embeddings") for row in all_rows):
        sections.append("(cached): that row's embeddings were read from $RETRIEVER_CACHE/embeddings, where an earlier "
                        "run with the same weights, spec and texts left them; its seconds are not those of encoding.\n")
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
