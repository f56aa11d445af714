"""benchmarks/layer_scan.py on a tiny model: each row is the zero-shot score of the base model without its last N
layers, the score driver.evaluate gives that model."""
import importlib.util
import json

from retriever.driver import evaluate
from retriever.modeling import EncoderModel
from retriever.modeling.loading import load_base_model, load_tokenizer
from retriever.spec import EmbeddingSpec
from tests.conftest import REPO

TEXT = {"query_template": "what is {text} sun", "passage_template": "{text} tree", "append_eos": False,
        "query_max_len": 10, "passage_max_len": 14}


def load_scan():
    spec = importlib.util.spec_from_file_location("layer_scan", REPO / "benchmarks" / "layer_scan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_row_scores_the_base_model_without_its_last_layers_as_evaluate_does(tiny_model_dir, tiny_beir, tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"model_name_or_path": tiny_model_dir, **TEXT}))
    rows = load_scan().main(["--data_dir", str(tiny_beir), "--recipe", str(recipe), "--drop", "0", "1"])
    assert [row["layers"] for row in rows] == [2, 1]
    tokenizer = load_tokenizer(tiny_model_dir)
    for row in rows:
        saved = tmp_path / f"drop{row['drop last']}"  # the base model without its last layers, as a model dir
        EncoderModel(load_base_model(tiny_model_dir, row["drop last"]), spec=EmbeddingSpec(**TEXT)).save(
            str(saved), tokenizer)
        metrics, = evaluate.main(["--model_name_or_path", str(saved), "--data_dir", str(tiny_beir), "--output_dir",
                                  str(tmp_path / f"eval{row['drop last']}"), "--save_index", "False"])
        assert row["nDCG@10"] == f"{metrics['nDCG@10']:.4f}"
    assert rows[0]["nDCG@10"] != rows[1]["nDCG@10"]
