"""GradCache: peak memory and step time vs the plain step, same model and same batch.

    python benchmarks/grad_cache_memory.py --train_data runs/demo/train_groups.jsonl \
        --batch 8 --group 4 --q_chunk 2 --p_chunk 4

Each mode runs in its own process (one forward + backward after a warm-up step).
Memory: on GPU, torch.cuda.max_memory_allocated during the step; on CPU, the
process's resident memory sampled every 2 ms during the step, minus the resident
memory just before it (weights and gradients of the warm-up are already there).
The children run with MALLOC_MMAP_THRESHOLD_=131072: glibc then serves every
large tensor with its own mapping and returns it on free, so resident memory
follows live tensors instead of keeping the warm-up's freed heap.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

import torch

from common import sync
from retriever.arguments import ModelArguments
from retriever.collator import TrainCollator
from retriever.spec import EmbeddingSpec
from retriever.data import TrainDataset, load_train_groups
from retriever.grad_cache import grad_cache_step
from retriever.modeling import EncoderModel
from retriever.modeling.loading import best_device, load_tokenizer
from retriever.spec import DEFAULT_MODEL


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class PeakRss:
    """Highest resident memory seen by a 2 ms sampling thread while the block runs."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def run_mode(a) -> dict:
    device = best_device()
    tokenizer = load_tokenizer(a.model)
    dataset = TrainDataset(load_train_groups(a.train_data)[: a.batch], a.group, seed=0)
    batch = TrainCollator(tokenizer, EmbeddingSpec(query_max_len=a.query_len, passage_max_len=a.passage_len))([dataset[i] for i in range(a.batch)])
    batch = {side: {k: v.to(device) for k, v in b.items()} for side, b in batch.items()}
    torch.manual_seed(0)
    model = EncoderModel.build(EmbeddingSpec(base_model=a.model), ModelArguments(lora=a.lora)).to(device).train()

    def step():
        if a.mode == "plain":
            loss = model(**batch).loss
            loss.backward()
        else:
            loss = grad_cache_step(model.encode_query, model.encode_passage,
                                   lambda q, p: model.loss(model, q, p)[0],
                                   batch["query"], batch["passage"], a.q_chunk, a.p_chunk)
        return float(loss)

    step()  # warm-up: allocates gradients
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with PeakRss() as rss:
        loss = step()
        sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() - base if device == "cuda" else rss.peak - rss.start
    return {"mode": a.mode, "device": device, "loss": loss, "seconds": seconds, "peak_extra_mb": peak / 2**20}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--train_data", required=True, help="Tevatron-layout JSONL (e.g. from driver.mine)")
    p.add_argument("--batch", type=int, default=8, help="queries per step")
    p.add_argument("--group", type=int, default=4, help="passages per query")
    p.add_argument("--query_len", type=int, default=32)
    p.add_argument("--passage_len", type=int, default=64)
    p.add_argument("--q_chunk", type=int, default=2)
    p.add_argument("--p_chunk", type=int, default=4)
    p.add_argument("--lora", action="store_true")
    p.add_argument("--mode", choices=["plain", "grad_cache"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.mode:  # child process: one mode, result as JSON on the last line
        print(json.dumps(run_mode(a)))
        return
    results = {}
    for mode in ("plain", "grad_cache"):
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--mode", mode],
                             capture_output=True, text=True, check=True, env=env)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    plain, gc = results["plain"], results["grad_cache"]
    print(f"{a.model}: {a.batch} queries x {a.group} passages, {a.query_len}/{a.passage_len} tokens, "
          f"{'LoRA' if a.lora else 'full'}, {plain['device']}, {torch.get_num_threads()} threads; "
          f"GradCache chunks {a.q_chunk} queries / {a.p_chunk} passages")
    for r in (plain, gc):
        print(f"  {r['mode']:10s}: loss {r['loss']:.5f}  step {r['seconds']:7.2f} s  "
              f"peak extra memory {r['peak_extra_mb']:8.1f} MiB")
    print(f"  GradCache / plain: memory {gc['peak_extra_mb'] / plain['peak_extra_mb']:.2f}x, "
          f"time {gc['seconds'] / plain['seconds']:.2f}x")


if __name__ == "__main__":
    main()
