"""Which layer summarises best: a base model's zero-shot nDCG@10 without its last N layers, for each N.

    python benchmarks/layer_scan.py --data_dir runs/probes/dev150-seed7/dev-500 --split dev --drop 0 1 2 3 4

By hand, not in CI. The base model (--model_name_or_path, default: the recipe's) is loaded as
`--drop_last_layers N` trains it (retriever.modeling.loading.load_base_model), reads text as
--recipe says (default demo_cpu: its template, lengths and pooling), and encodes the split's
queries and the corpus of --data_dir (a BEIR folder; `driver.subset` makes a small one); exact
search (the searcher's flat index, as driver.evaluate), ir-measures. Prints one row per N with a
paired t-test against the first N: a base whose best N is above 0 may train better without those
layers, at less cost a step (docs/results.md, "The demo's decoder without its last layer"). Each N
is one zero-shot encoding of the set.
"""
import argparse
import time

from retriever.data import load_corpus, load_qrels
from retriever.driver import make_parser
from retriever.encoding import corpus_texts, encode_as_trained, split_queries
from retriever.metrics import format_table, means, paired_test, per_query_scores, to_run
from retriever.modeling import EncoderModel
from retriever.modeling.loading import load_base_model, load_tokenizer
from retriever.searcher import build_index, search
from retriever.training import TRAIN_ARGUMENTS, embedding_spec


def main(argv=None) -> list[dict]:
    """The printed table's rows."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", required=True, help="a BEIR folder")
    p.add_argument("--split", default="test")
    p.add_argument("--recipe", default="demo_cpu", help="how text is read: a name in retriever/recipes/ or a file")
    p.add_argument("--model_name_or_path", default=None, help="the base model (default: the recipe's)")
    p.add_argument("--drop", type=int, nargs="+", default=[0, 1, 2, 3], help="numbers of last layers left out")
    p.add_argument("--batch_size", type=int, default=16)
    a = p.parse_args(argv)
    model_flags = ["--model_name_or_path", a.model_name_or_path] if a.model_name_or_path else []
    model_args, data_args, _ = make_parser(TRAIN_ARGUMENTS, "train\n").parse_args_into_dataclasses(
        args=["--recipe", a.recipe, *model_flags])
    spec = embedding_spec(model_args, data_args)
    tokenizer = load_tokenizer(spec.base_model, spec.padding_side)
    p_ids, p_texts = corpus_texts(load_corpus(a.data_dir))
    q_ids, q_texts = split_queries(a.data_dir, a.split)
    qrels = load_qrels(a.data_dir, a.split)
    rows, scores = [], {}
    for drop in a.drop:
        started = time.monotonic()
        encoder = load_base_model(spec.base_model, drop)
        model = EncoderModel(encoder, spec=spec).eval()
        queries, passages = (encode_as_trained(model, tokenizer, texts, kind, a.batch_size, f"drop {drop}: {kind}")
                             for texts, kind in ((q_texts, "query"), (p_texts, "passage")))
        run = to_run(q_ids, p_ids, *search(build_index(passages), queries, depth=100))
        per_query = per_query_scores(qrels, run)
        scores[drop] = per_query["nDCG@10"]
        diff, pvalue, _ = paired_test(scores[drop], scores[a.drop[0]])
        rows.append({"drop last": drop, "layers": encoder.config.num_hidden_layers,
                     **{k: f"{v:.4f}" for k, v in means(per_query).items()},
                     f"vs drop {a.drop[0]}": "" if drop == a.drop[0] else f"{diff:+.4f} (p = {pvalue:.3f})",
                     "seconds": f"{time.monotonic() - started:.0f}"})
    print(f"{spec.base_model} zero-shot, read as {a.recipe}; {len(q_ids)} queries of {a.split}, {len(p_ids)} documents "
          f"of {a.data_dir}")
    print(format_table(rows, list(rows[0])))
    return rows


if __name__ == "__main__":
    main()
