"""The documentation as a reader meets it: every relative link resolves (file and heading), every command block is
either run by a test as written or says why not, and the README stays a five-minute read."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, readme_commands

DOCS = ["README.md", "retriever/README.md", "benchmarks/README.md",
        *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
# The command blocks of the docs that tests run as written (on tiny data): (file, the heading above the block).
RUN = {
    ("README.md", "## Your own data"): "tests/driver/test_own_data.py",
    ("docs/own-data.md", "## Several sets, the off-the-shelf embedder"): "tests/driver/test_own_data.py",
    ("retriever/README.md", "## The offline route"): "tests/scripts/test_homework_scripts.py",
    ("docs/course.md", "## The handout and the graded tests"): "tests/test_docs.py",
}
# The others, and why a test does not run them.
NOT_RUN = {
    ("README.md", "## Two commands for a fresh machine"): "make demo and make test are what CI and the demo run",
    ("README.md", "## Students: the homework"): "the course's defaults need a GPU and the hub; the offline route runs them",
    ("README.md", "## Graders: the four methods"): "CI runs the whole suite, these tests among it",
    ("README.md", "## Instructors: the handout and the model swap"): "docs/course.md's handout block is run; the swap takes minutes",
    ("docs/recipes.md", "# Recipes: one home for settings"): "the offline route runs the same command",
    ("docs/training.md", "## Running on a GPU"): "needs a GPU and the hub",
    ("docs/models.md", "# Models: swapping the base model"): "real models, minutes each (make swap)",
    ("docs/results.md", "### The off-the-shelf embedder, fine-tuned"): "real models on whole corpora, half an hour; "
                                                                  "test_own_data runs the same drivers on tiny data",
    ("docs/results.md", "### The course recipe at full size on one H100"): "a GPU run",
    ("docs/results.md", "## bf16 on a CPU"): "the whole demo, minutes",
    ("docs/results.md", "### The demo's decoder: other levers"): "two decoder trainings, ~15 minutes on 2 cores; "
                                                              "tests/benchmarks/test_recipe_probes.py runs it on tiny data",
    ("docs/results.md", "### The demo's decoder: more levers"): "the whole demo with twice the training, ~14 minutes; "
                                                                "tests/scripts/test_run_all.py runs run_all on tiny data",
    ("docs/results.md", "### The demo's decoder without its last layer"): "decoder trainings, ~6 minutes each on 2 "
                                                                          "cores; tests/benchmarks/ runs both scripts "
                                                                          "on tiny data",
    ("docs/results.md", "### The demo's decoder, fully fine-tuned"): "three decoder trainings, ~20 minutes on 2 cores; "
                                                                     "tests/benchmarks/test_recipe_probes.py runs it "
                                                                     "on tiny data",
    ("docs/results.md", "### The demo's decoder: schedules"): "seven decoder trainings, ~45 minutes on 2 cores; "
                                                             "tests/benchmarks/test_recipe_probes.py runs it on tiny data",
    ("docs/results.md", "### Gemma-3-270M with the batch and rate"): "two decoder trainings and the demo, ~25 "
                                                                       "minutes; tests/benchmarks/ and "
                                                                       "tests/scripts/test_run_all.py run both on tiny data",
    ("docs/results.md", "### Gemma-3-270M reading passages at"): "five decoder trainings, ~30 minutes; "
                                                                  "tests/benchmarks/test_recipe_probes.py runs it on tiny data",
    ("docs/results.md", "### The swap's decoder on the whole SciFact"): "a real model over a whole corpus, ~30 "
                                                                          "minutes; tests/driver/ runs evaluate on tiny data",
    ("docs/scaling.md", "## Several GPUs on one machine"): "needs GPUs; tests/test_distributed.py runs evaluate and "
                                                            "encode under torchrun with two CPU processes",
    ("docs/scaling.md", "## Several machines"): "needs several machines",
}


def blocks(doc: str) -> list[str]:
    """The heading above each ```bash block of a doc, in order."""
    heading, found = "", []
    for line in (REPO / doc).read_text().splitlines():
        if line.startswith("#"):
            heading = line
        elif line.startswith("```bash"):
            found.append(heading)
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves_to_a_file_and_heading(doc):
    path = REPO / doc
    links = re.findall(r"\]\(([^)\s]+)\)", path.read_text())
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # http(s), mailto
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{doc}: broken link {link}"
        if anchor:
            headings = [line for line in file.read_text().splitlines() if line.startswith("#")]
            assert anchor in {slug(h) for h in headings}, f"{doc}: no heading for #{anchor} in {file.name}"


def test_the_link_check_finds_a_broken_link(tmp_path, monkeypatch):
    (tmp_path / "a.md").write_text("# A\n[b](b.md) [a](#a) [gone](#nowhere)\n")
    (tmp_path / "b.md").write_text("# B\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    with pytest.raises(AssertionError, match="no heading for #nowhere"):
        test_every_relative_link_resolves_to_a_file_and_heading("a.md")


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_block_is_run_by_a_test_or_says_why_not(doc):
    for heading in blocks(doc):
        key = next((k for k in [*RUN, *NOT_RUN] if k[0] == doc and heading.startswith(k[1])), None)
        assert key, f"{doc}: the command block under '{heading}' is neither run by a test nor listed with a reason"


def test_the_readme_is_a_five_minute_read():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", readme)  # dated figures live in docs/results.md


def test_the_course_pages_handout_block_runs_as_written(tmp_path):
    commands = readme_commands("docs/course.md", "## The handout and the graded tests")
    commands = commands.replace("handout/", str(tmp_path / "handout"))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "handout" / "README.md").read_text().startswith("# Homework")
    assert re.search(r"\d+ passed", done.stdout)
