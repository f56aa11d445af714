"""The handout: generated from the solution by its markers; its graded tests fail there and pass here."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from retriever.driver import handout as handout_driver
from retriever.driver import run_cli
from retriever.handout import GRADED_FILES, GRADED_TESTS, ROOT, TODOS, blank_regions, write_handout
from retriever.io import DataError


def run_graded_tests(project: Path) -> subprocess.CompletedProcess:
    """pytest on the graded tests of `project`, importing that project's own `retriever`."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", GRADED_TESTS],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def handout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course") / "handout"
    assert run_cli(lambda: handout_driver.main(["--output_dir", str(out)])) == 0
    return out


def test_graded_tests_fail_on_the_handout_with_not_implemented_and_pass_on_the_project(handout):
    on_handout = run_graded_tests(handout)
    assert on_handout.returncode == 1, on_handout.stdout[-2000:]
    summary = on_handout.stdout.strip().splitlines()[-1]
    assert " failed" in summary and " passed" not in summary, summary
    assert "NotImplementedError" in on_handout.stdout
    on_project = run_graded_tests(ROOT)
    assert on_project.returncode == 0, on_project.stdout[-2000:]
    assert " passed" in on_project.stdout and " failed" not in on_project.stdout


def test_handout_keeps_no_line_of_the_solution_and_says_what_to_return(handout):
    solution, student = ("".join((root / f).read_text() for f in GRADED_FILES) for root in (ROOT, handout))
    for line in ("mask.flip(dims=[1])", "return q_reps @ p_reps.T / temperature",
                 "torch.arange(n_queries, dtype=torch.long) * group_size", "F.cross_entropy(scores.float()"):
        assert line in solution and line not in student
    assert "# >>> graded" not in student and "# <<< graded" not in student
    for name in ("pooling", "compute_similarity", "compute_labels", "compute_loss"):
        assert f'raise NotImplementedError("{name}:' in student
    assert 'raise NotImplementedError("pool-last:' in student
    assert "(batch, hidden)" in student and "torch.long" in student and "padding" in student


def test_handout_is_the_same_tree_with_a_student_readme(handout):
    for rel in ("retriever/scripts/train_msmarco.sh", "retriever/README.md", "tests/modeling/test_graded.py",
                "retriever/modeling/loss.py", "pyproject.toml"):
        assert (handout / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    assert not (handout / "retriever/driver/handout.py").exists() and not (handout / ".git").exists()
    readme = (handout / "README.md").read_text()
    assert readme.startswith("# Homework")
    assert "driver.handout" not in readme and "## Your own data" in readme  # the instructors' section is left out
    for must in ("pooling", "compute_similarity", "compute_labels", "compute_loss", GRADED_TESTS,
                 "train_msmarco.sh", "encode_fiqa.sh", "search_fiqa.sh", "retriever/README.md"):
        assert must in readme, must


def test_handout_refuses_a_non_empty_output_dir_and_leaves_it_alone(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert run_cli(lambda: handout_driver.main(["--output_dir", str(tmp_path)])) == 2
    assert "--output_dir" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_a_region_left_open_or_without_a_todo_is_an_error_naming_the_line():
    with pytest.raises(DataError, match=r"enc.py: graded region 'pooling' is never closed"):
        blank_regions("x = 1\n    # >>> graded: pooling\n    return 1\n", "enc.py")
    with pytest.raises(DataError, match=r"enc.py:1: graded region 'nope' has no TODO"):
        blank_regions("# >>> graded: nope\n# <<< graded: nope\n", "enc.py")
    text, names = blank_regions("def f():\n    # >>> graded: compute_loss\n    return 1\n"
                                "    # <<< graded: compute_loss\n", "enc.py")
    assert names == ["compute_loss"] and "return 1" not in text and "    raise NotImplementedError" in text
    assert set(TODOS) >= {"pooling", "compute_similarity", "compute_labels", "compute_loss"}


def test_the_handout_holds_only_the_files_git_tracks_never_a_stray_backup_of_a_graded_file(tmp_path):
    # reliability round 4, case 3: an editor's backup (encoder.py~) with every solution in it was handed out
    project = tmp_path / "project"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        if (ROOT / rel).is_file():
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_bytes((ROOT / rel).read_bytes())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    backup = project / "retriever" / "modeling" / "encoder.py~"
    backup.write_text((project / "retriever" / "modeling" / "encoder.py").read_text())
    (project / "runs").mkdir()
    (project / "runs" / "notes.txt").write_text("not the project's")
    out = tmp_path / "handout"
    write_handout(str(out), root=project)
    handed = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "retriever/modeling/encoder.py" in handed and "tests/modeling/test_graded.py" in handed
    assert "retriever/modeling/encoder.py~" not in handed and "runs/notes.txt" not in handed
    assert handed == {rel for rel in tracked if (ROOT / rel).is_file()} - {
        "retriever/handout.py", "retriever/driver/handout.py", "tests/driver/test_handout.py"}
    assert not any("mask.flip(dims=[1])" in (out / rel).read_text(errors="ignore") for rel in handed)


def test_outside_a_git_clone_the_handout_is_refused_with_the_reason(tmp_path):
    (tmp_path / "README.md").write_text("# not a clone")
    with pytest.raises(DataError, match="the handout is made of the files git tracks"):
        write_handout(str(tmp_path / "out"), root=tmp_path)
    assert not (tmp_path / "out").exists()
