"""Encode throughput: our encode vs SentenceTransformer.encode (last-token pooling), same model and texts.

    python benchmarks/encode_throughput.py --n_texts 500 --max_len 128 --batch_size 16 --repeat 2   # CPU
    python benchmarks/encode_throughput.py --n_texts 0 --max_len 256 --batch_size 128 --bf16   # GPU

Both sides get the same texts (EOS appended), max_len, batch size, device and
weights (with --bf16 on a GPU both run bf16 weights), and one untimed warm-up
pass; each is then timed --repeat times, alternating (A, B, A, B), and the median is
kept. Each side's compute rate is its model FLOPs (2 x non-embedding parameters per
real token) per second, also as a fraction of what a large fp32 matmul reaches on the
same device, timed in the same run. The last line is `ratio <our passages/s / theirs>`.
"""
import argparse
import statistics
import time

import numpy as np
import torch

from common import sync, where
from retriever.text import format_text, tokenize
from retriever.data import load_corpus
from retriever.encoding import autocast, encode_texts, half_weights
from retriever.modeling import EncoderModel
from retriever.modeling.loading import best_device, load_tokenizer
from retriever.pooling import get_pooling
from retriever.resolve import resolve_model_path
from retriever.spec import DEFAULT_MODEL


def timed(fn, device: str) -> tuple[float, np.ndarray]:
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--data_dir", default="../shared/data/scifact")
    p.add_argument("--n_texts", type=int, default=500, help="first N passages of the corpus; 0 = all")
    p.add_argument("--max_len", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--bf16", action="store_true", help="bf16 weights on GPU (autocast on CPU), both sides")
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    device = best_device()
    path = resolve_model_path(a.model)
    docs = load_corpus(a.data_dir)
    texts = [format_text(d["text"], title=d["title"]) for d in docs[: a.n_texts or len(docs)]]
    tokenizer = load_tokenizer(path)
    model = half_weights(EncoderModel.load(path).to(device).eval(), device, a.bf16, False)

    def ours():
        return encode_texts(model, tokenizer, texts, a.max_len, a.batch_size, device, a.bf16)[model.spec.pooling]

    # Same work for the baseline: the same tokens ending in EOS, last-token pooling, L2 norm.
    # Plain text in, hidden states out: sentence-transformers 6 would otherwise wrap every
    # text in the model's chat template (a different, longer input).
    plain_text = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
    transformer = Transformer(path, max_seq_length=a.max_len, module_output_name="token_embeddings",
                              modality_config=plain_text)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=get_pooling("last").st_name)
    st = SentenceTransformer(modules=[transformer, pooling, Normalize()], device=device)
    if device == "cuda" and a.bf16:
        st = st.to(torch.bfloat16)
    # sentence-transformers truncates after any EOS we append, so long texts would lose
    # it: hand it our texts already cut to max_len - 1 tokens, then EOS (the same tokens).
    eos = tokenizer.eos_token
    st_texts = [tokenizer.decode(ids[:-1], skip_special_tokens=True) + eos
                for ids in tokenize(tokenizer, texts, a.max_len)]

    @torch.inference_mode()
    def theirs():  # on a GPU its weights are already bf16; on a CPU, autocast as ours does
        with autocast(device, a.bf16 and device == "cpu", False):
            return st.encode(st_texts, batch_size=a.batch_size, show_progress_bar=False)

    warm = texts[: 2 * a.batch_size]
    encode_texts(model, tokenizer, warm, a.max_len, a.batch_size, device, a.bf16)
    st.encode(st_texts[: len(warm)], batch_size=a.batch_size, show_progress_bar=False)
    t_ours, t_theirs = [], []
    for _ in range(a.repeat):
        t, mine = timed(ours, device)
        t_ours.append(t)
        t, other = timed(theirs, device)
        t_theirs.append(t)
    t_ours, t_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    cosine = float(np.mean(np.sum(mine * np.asarray(other, dtype=np.float32), axis=1)))
    n_tokens = sum(len(ids) for ids in tokenize(tokenizer, texts, a.max_len))
    weights = sum(p.numel() for name, p in model.encoder.named_parameters() if "embed" not in name)
    flops = 2 * weights * n_tokens  # the matmuls of every real token (attention scores left out: short texts)
    peak = matmul_flops(device, torch.bfloat16 if a.bf16 else torch.float32)
    print(f"{len(texts)} passages of {a.data_dir}, max {a.max_len} tokens ({n_tokens} real), batch {a.batch_size}, "
          f"{'bf16' if a.bf16 else 'fp32'}, {where(device)}; median of {a.repeat} after a warm-up")
    print(f"  a 2048 x 2048 matmul  : {peak / 1e9:9.1f} GFLOP/s (the device's practical peak here)")
    for name, t in (("ours", t_ours), ("SentenceTransformer", t_theirs)):
        print(f"  {name:22s}: {len(texts) / t:9.2f} passages/s, {flops / t / 1e9:6.1f} GFLOP/s = "
              f"{flops / t / peak:.0%} of that peak")
    print(f"  mean cosine between the two: {cosine:.4f}")
    print(f"ratio {t_theirs / t_ours:.2f}")


def matmul_flops(device: str, dtype, n: int = 2048, repeat: int = 5) -> float:
    """FLOP/s of the best of `repeat` n x n matmuls: what the device reaches on the easiest work."""
    x = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(x, x)
    best = min(timed(lambda: torch.mm(x, x), device)[0] for _ in range(repeat))
    return 2 * n ** 3 / best


if __name__ == "__main__":
    main()
