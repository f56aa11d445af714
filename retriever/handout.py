"""The student's handout, generated from the solution (python -m retriever.driver.handout).

The solution is the source: in the graded files, each graded region sits between
`# >>> graded: NAME` and `# <<< graded: NAME`. The handout is a copy of the project
tree in which every region becomes a TODO comment (what to return: shapes, dtype, the
hint) and `raise NotImplementedError`, and whose README opens with the student's
instructions. No second copy of the code is kept anywhere.
"""
import re
import shutil
import subprocess
from pathlib import Path

from retriever.io import DataError, atomic_dir

ROOT = Path(__file__).resolve().parent.parent
GRADED_FILES = ("retriever/modeling/encoder.py", "retriever/pooling.py")
GRADED_TESTS = "tests/modeling/test_graded.py"
# Handed out: the files git tracks, but for the generator itself and its test. Nothing else that lies
# beside them (an editor's backup of a graded file, run outputs, caches) is ever copied.
SKIP_FILES = {"retriever/handout.py", "retriever/driver/handout.py", "tests/driver/test_handout.py"}

BEGIN = re.compile(r"^(?P<indent>\s*)# >>> graded: (?P<name>[\w-]+)\s*$")
END = re.compile(r"^\s*# <<< graded: (?P<name>[\w-]+)\s*$")

# What each region must do, as the student reads it in place of the code.
TODOS = {
    "pooling": """\
TODO (graded): last-token pooling.
last_hidden_state is (batch, seq, hidden) float; attention_mask is (batch, seq), 1 on real
tokens and 0 on padding. Return a (batch, hidden) float tensor: for each row, the hidden
state of its LAST REAL token, L2-normalised (torch.nn.functional.normalize).
Hint: find that position through the attention mask, not the token ids (pad id can equal
EOS id), and make it right for both padding sides: with right padding it is the number of
real tokens - 1; with left padding it is always seq - 1.""",
    "pool-last": """\
TODO (graded through EncoderModel.pooling): last_hidden_state is (batch, seq, hidden),
attention_mask is (batch, seq). Return (batch, hidden): each row's state at its last real
token, without the L2 norm (EncoderModel.pooling adds it). hidden_at(last_hidden_state,
positions) picks one position per row.""",
    "compute_similarity": """\
TODO (graded): q_reps is (n_queries, dim), p_reps is (n_passages, dim). Return the
(n_queries, n_passages) float tensor of dot products of every query with every passage,
divided by temperature. Do not normalise here: pooling already did.""",
    "compute_labels": """\
TODO (graded): passages come grouped by query, positive first: P = n_passages // n_queries
passages per query, so the positive of query i is column i * P. Return a torch.long tensor
of shape (n_queries,): [0, P, 2P, ...]. Raise ValueError when n_passages is not a positive
multiple of n_queries.""",
    "compute_loss": """\
TODO (graded): scores is (n_queries, n_passages), target is (n_queries,) long. Return the
mean softmax cross-entropy of each row against its target column as a 0-dim tensor
(torch.nn.functional.cross_entropy); compute it in float32.""",
}

STUDENT_README = """\
# Homework: a dense retriever from a decoder-only language model

This is your copy of the `retriever` project. Everything works except the four methods
the course grades, in `retriever/modeling/encoder.py`, class `EncoderModel`:

| method | returns |
|---|---|
| `pooling(self, last_hidden_state, attention_mask)` | (batch, hidden): the last real token of each sequence, L2-normalised |
| `compute_similarity(self, q_reps, p_reps, temperature)` | (n_queries, n_passages): dot products / temperature |
| `compute_labels(self, n_queries, n_passages)` | torch.long (n_queries,): the column of each query's positive passage |
| `compute_loss(self, scores, target)` | 0-dim tensor: the mean cross-entropy |

Each raises `NotImplementedError` under a TODO comment that says what to return (shapes,
dtype, hints). `last_token` in `retriever/pooling.py` has one more TODO: the last
real token's position, without the norm; your `pooling` can call it, and `--normalize False`
and the re-ranker use it alone.
None of the four reads `self`: the graders call them on the class, e.g.
`EncoderModel.pooling(None, hidden, mask)`, so keep them that way.

**Check your work** with the graders' tests (all of them fail until you implement the methods):

```bash
python -m pytest tests/modeling/test_graded.py
```

Then the whole suite (`python -m pytest`) exercises training, encoding and search through your code;
it passes once `last_token` is filled in too.

**Run the homework**: three scripts, in order, described in `retriever/README.md` (what each
reads, writes and prints, its variables, the GPU and the offline CPU recipes, the W&B / PNG
loss curve and the MRR to report):

```bash
bash retriever/scripts/train_msmarco.sh    # train on MS MARCO; loss curve in OUTPUT_DIR/loss_curve.png
bash retriever/scripts/encode_fiqa.sh      # encode the FiQA corpus and test queries
bash retriever/scripts/search_fiqa.sh      # FAISS search, MRR@10 / nDCG@10 / Recall@100
```

Each takes `--help`. Below is the project's own README.

---

"""


INSTRUCTORS_SECTION = "## Instructors: the handout and the model swap"


def without_section(markdown: str, heading: str) -> str:
    """The text without the section under `heading` (up to the next heading of its level)."""
    if heading not in markdown:
        return markdown
    before, rest = markdown.split(heading, 1)
    level = heading.split(" ", 1)[0]
    after = rest.split(f"\n{level} ", 1)
    return before + (f"{level} {after[1]}" if len(after) > 1 else "")


def blank_regions(source: str, where: str) -> tuple[str, list[str]]:
    """The source with every graded region replaced by its TODO and a NotImplementedError;
    returns (new source, names of the regions)."""
    out, names, open_region = [], [], None
    for line_no, line in enumerate(source.splitlines(keepends=True), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_region:
                raise DataError(f"{where}:{line_no}: graded region '{begin['name']}' starts inside "
                                f"'{open_region}'")
            open_region = begin["name"]
            if open_region not in TODOS:
                raise DataError(f"{where}:{line_no}: graded region '{open_region}' has no TODO text "
                                f"(known: {', '.join(TODOS)})")
            indent = begin["indent"]
            out += [f"{indent}# {text}".rstrip() + "\n" for text in TODOS[open_region].splitlines()]
            out.append(f'{indent}raise NotImplementedError("{open_region}: the homework; see the TODO above")\n')
            names.append(open_region)
        elif end:
            if end["name"] != open_region:
                raise DataError(f"{where}:{line_no}: '# <<< graded: {end['name']}' closes "
                                f"{repr(open_region) if open_region else 'no open region'}")
            open_region = None
        elif open_region is None:
            out.append(line)
    if open_region:
        raise DataError(f"{where}: graded region '{open_region}' is never closed")
    return "".join(out), names


def project_files(root: Path) -> list[Path]:
    """Relative paths of the project's files that go into the handout: those git tracks (and that exist)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise DataError(f"{root}: the handout is made of the files git tracks, and git cannot list them here "
                        f"({getattr(e, 'stderr', b'').decode().strip() or e}); run it in a clone of the project") from None
    files = sorted(Path(name) for name in listed.decode().split("\0") if name)
    return [rel for rel in files if rel.as_posix() not in SKIP_FILES and (root / rel).is_file()]


def write_handout(output_dir: str, root: Path = ROOT) -> list[str]:
    """Write the handout to output_dir (which must not exist or be empty); returns the graded
    region names. Built in a temporary directory beside it and renamed when complete."""
    target = Path(output_dir).resolve()
    if target == root or target in root.parents:
        raise ValueError(f"--output_dir {output_dir}: would write over the project; choose a new directory")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"--output_dir {output_dir}: exists and is not empty; choose a new directory")
    names = []
    with atomic_dir(target) as tmp:
        for rel in project_files(root):
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel.as_posix() in GRADED_FILES:
                text, found = blank_regions((root / rel).read_text(encoding="utf-8"), rel.as_posix())
                dest.write_text(text, encoding="utf-8")
                names += found
            elif rel.as_posix() == "README.md":
                dest.write_text(STUDENT_README + without_section((root / rel).read_text(encoding="utf-8"),
                                                                 INSTRUCTORS_SECTION), encoding="utf-8")
            else:
                shutil.copy2(root / rel, dest)
        missing = sorted(set(TODOS) - set(names))
        if missing:
            raise DataError(f"no graded region named {', '.join(missing)} in {', '.join(GRADED_FILES)}")
    return names
