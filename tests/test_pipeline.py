"""retriever.pipeline: a stage is one driver run, in its own process or (RETRIEVER_IN_PROCESS=1) in the
pipeline's, with the same command written, the same files and the driver's own exit code."""
import pytest

from retriever import pipeline as pipeline_module
from retriever.pipeline import COMMANDS_FILE, Pipeline


def refused(*args, **kwargs):
    raise AssertionError("the other way of running a stage was taken")


@pytest.mark.parametrize("in_process", ["0", "1"])
def test_a_stage_runs_its_driver_writes_its_command_and_stops_the_pipeline_with_the_drivers_exit_code(
        tiny_beir, tmp_path, monkeypatch, capfd, in_process):
    monkeypatch.setenv("RETRIEVER_IN_PROCESS", in_process)
    if in_process == "1":  # no process is started
        monkeypatch.setattr(pipeline_module.subprocess, "run", refused)
    else:  # nothing runs in this one
        monkeypatch.setattr(pipeline_module, "run_in_process", refused)
    pipeline = Pipeline(tmp_path / "run", "test")
    seconds = pipeline.run("subset", "--data_dir", tiny_beir, "--n_docs", 10, "--output_dir", tmp_path / "sub")
    assert seconds > 0 and len((tmp_path / "sub" / "corpus.jsonl").read_text().splitlines()) == 10
    with pytest.raises(SystemExit) as stopped:  # a bad flag value: the driver's one-line error and its code 2
        pipeline.run("subset", "--data_dir", tmp_path / "nowhere", "--output_dir", tmp_path / "sub2")
    assert stopped.value.code == 2
    err = capfd.readouterr().err
    assert "nowhere" in err and "Traceback" not in err and not (tmp_path / "sub2").exists()
    commands = (tmp_path / "run" / COMMANDS_FILE).read_text().splitlines()
    assert commands[1] == (f"python -m retriever.driver.subset --data_dir {tiny_beir} --n_docs 10 "
                           f"--output_dir {tmp_path / 'sub'}")
    assert commands[2].endswith(f"--output_dir {tmp_path / 'sub2'}") and len(commands) == 3
