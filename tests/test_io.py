"""Files written whole or not at all, with ordinary modes."""
import pytest

from retriever.driver import encode, train
from retriever.io import atomic_write
from tests.conftest import train_args


def test_failed_write_leaves_previous_file_and_no_partial_file(tmp_path):
    target = tmp_path / "run.trec"
    target.write_text("complete old run\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half a new ru")
            raise RuntimeError("killed")
    assert target.read_text() == "complete old run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.trec"]


def test_saved_files_get_the_mode_an_ordinary_write_gives(tiny_model_dir, tiny_groups, tiny_beir, tmp_path):
    # case 18: a model copied into a shared folder must be readable by others (umask, not mkstemp's 0600)
    import os
    import stat

    out = tmp_path / "m"
    train.main(train_args(tiny_model_dir, tiny_groups, out, "--max_steps", "1"))
    encode.main(["--model_name_or_path", str(out), "--data_dir", str(tiny_beir), "--output_file",
                 str(tmp_path / "emb" / "corpus.npz")])
    umask = os.umask(0)
    os.umask(umask)
    files = [p for p in [*out.rglob("*"), tmp_path / "emb" / "corpus.npz"] if p.is_file()]
    assert {"model.safetensors", "embedding_spec.json", "modules.json", "train_log.json", "loss_curve.png",
            "config_sentence_transformers.json"} <= {p.name for p in files}
    wrong = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != 0o666 & ~umask}
    assert not wrong
