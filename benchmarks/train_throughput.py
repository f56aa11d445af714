"""Training throughput: our Trainer step vs a bare PyTorch loop, same model, batches and optimizer.

    python benchmarks/train_throughput.py --steps 4 --batch 4 --group 2
    python benchmarks/train_throughput.py --train_data G.jsonl --steps 20 --batch 32 --group 4 --bf16  # GPU

Both run on the same device (a GPU when torch sees one), the same batches, AdamW
and, with --bf16, bf16 autocast. The bare loop runs first, once untimed over every
batch (kernel choice and allocator caches then serve both sides); the first timed
step of each side is dropped.
"""
import argparse
import time

import torch
from transformers import TrainerCallback

from common import sync, where
from retriever.arguments import ModelArguments
from retriever.collator import TrainCollator
from retriever.spec import EmbeddingSpec
from retriever.data import TrainDataset, load_train_groups
from retriever.modeling import EncoderModel
from retriever.trainer import RetrieverTrainer, RetrieverTrainingArguments
from retriever.spec import DEFAULT_MODEL


class StepTimer(TrainerCallback):
    def __init__(self, device: str):
        self.times, self.device = [], device

    def on_step_begin(self, *args, **kwargs):
        sync(self.device)
        self.start = time.perf_counter()

    def on_step_end(self, *args, **kwargs):
        sync(self.device)
        self.times.append(time.perf_counter() - self.start)


def tokens(batch):
    return int(batch["query"]["attention_mask"].sum() + batch["passage"]["attention_mask"].sum())


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--train_data", required=True, help="Tevatron-layout JSONL (e.g. from driver.mine)")
    p.add_argument("--steps", type=int, default=4, help="timed steps (one more is run as warm-up)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--group", type=int, default=2)
    p.add_argument("--max_len", type=int, default=64)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides")
    a = p.parse_args()
    from retriever.modeling.loading import best_device, load_tokenizer

    device = best_device()

    tokenizer = load_tokenizer(a.model)
    dataset = TrainDataset(load_train_groups(a.train_data)[: a.batch * (a.steps + 1)], a.group, seed=0)
    collate = TrainCollator(tokenizer, EmbeddingSpec(query_max_len=32, passage_max_len=a.max_len))
    batches = [collate([dataset[i] for i in range(s * a.batch, (s + 1) * a.batch)]) for s in range(a.steps + 1)]
    n_tokens = sum(tokens(b) for b in batches[1:])

    # bare loop
    torch.manual_seed(0)
    model = EncoderModel.build(EmbeddingSpec(base_model=a.model), ModelArguments()).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=a.bf16)
    def bare_step(batch):
        batch = {side: {k: v.to(device) for k, v in b.items()} for side, b in batch.items()}
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    for batch in batches:  # untimed pass over every batch shape: kernel choice and caches warm for both sides
        bare_step(batch)
    times = []
    for batch in batches:
        sync(device)
        start = time.perf_counter()
        bare_step(batch)
        sync(device)
        times.append(time.perf_counter() - start)
    t_bare = sum(times[1:])

    # ours: RetrieverTrainer with the same batches (sequential sampler, no shuffling)
    opt = None  # frees the bare loop's optimizer state before ours is built
    torch.manual_seed(0)
    model = EncoderModel.build(EmbeddingSpec(base_model=a.model), ModelArguments())
    timer = StepTimer(device)
    args = RetrieverTrainingArguments(output_dir="/tmp/bench-train", max_steps=a.steps + 1,
                                      per_device_train_batch_size=a.batch, learning_rate=1e-5,
                                      lr_scheduler_type="constant", logging_steps=10_000, optim="adamw_torch",
                                      bf16=a.bf16, disable_tqdm=True, dataloader_pin_memory=False)
    items = [dataset[i] for i in range(len(dataset))]
    trainer = RetrieverTrainer(model=model, args=args, train_dataset=items, data_collator=collate, callbacks=[timer])
    trainer._get_train_sampler = lambda *_, **__: torch.utils.data.SequentialSampler(items)
    trainer.train()
    t_ours = sum(timer.times[1:])
    print(f"{a.steps} timed steps of {a.batch} queries x {a.group} passages, max {a.max_len} tokens; "
          f"{n_tokens} real tokens, {'bf16' if a.bf16 else 'fp32'}, {where(device)}")
    print(f"  bare PyTorch loop : {n_tokens / t_bare:8.1f} tokens/s")
    print(f"  ours (Trainer)    : {n_tokens / t_ours:8.1f} tokens/s")
    print(f"  ratio ours/bare   : {t_bare / t_ours:.2f}x")


if __name__ == "__main__":
    main()
