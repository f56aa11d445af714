"""Does a trained model directory give the same vectors in sentence-transformers as our encode?

    python benchmarks/st_reload.py --model_dir runs/m --emb_dir runs/m-eval/emb --data_dir BEIR_DIR [--n 32]

Loads `SentenceTransformer(model_dir)`, encodes the first N queries and N passages of the
encode outputs in emb_dir (queries.npz, corpus*.npz) with `encode_query` / `encode_document`,
and prints the min and mean cosine against ours. Last line: `min_cosine <value>`.
"""
import argparse
import json

import numpy as np

from retriever.text import join_title
from retriever.data import load_corpus, load_queries
from retriever.searcher import load_corpus_shards, load_embeddings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--emb_dir", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--n", type=int, default=32)
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(args.model_dir, device="cpu")
    q_emb, q_ids, _ = load_embeddings(f"{args.emb_dir}/queries.npz")
    p_emb, p_ids, _ = load_corpus_shards(f"{args.emb_dir}/corpus*.npz")
    queries = load_queries(args.data_dir)
    corpus = {doc["id"]: doc for doc in load_corpus(args.data_dir)}
    n = args.n
    theirs_q = st.encode_query([queries[i] for i in q_ids[:n]], normalize_embeddings=False)
    theirs_p = st.encode_document([join_title(corpus[i]["text"], corpus[i]["title"]) for i in p_ids[:n]], normalize_embeddings=False)
    cos = []
    for ours, theirs in ((q_emb[:n], theirs_q), (p_emb[:n], theirs_p)):
        ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
        theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
        cos.extend((ours * theirs).sum(axis=1).tolist())
    print(json.dumps({"n_texts": len(cos), "mean_cosine": float(np.mean(cos))}))
    print(f"min_cosine {min(cos):.6f}")


if __name__ == "__main__":
    main()
