"""Training speed against a peer: our Trainer vs sentence-transformers' on the same batches.

    python benchmarks/peer_train.py --train_data runs/demo/train_groups.jsonl --steps 5 --rounds 2

Both sides train the same model from the same weights with the same recipe file
(retriever/recipes/demo_cpu.json by default: LoRA, template, lengths, temperature,
learning rate and schedule, batch of queries x passages), on the same batches in the
same order, with the same optimizer (AdamW, torch). Ours: retriever's RetrieverTrainer
and the contrastive loss. Theirs: SentenceTransformerTrainer with
MultipleNegativesRankingLoss at scale 1 / temperature, on the same base model saved in
the sentence-transformers format (our save writes it: its prompts, chat template and
lengths give the same token ids), with the same LoRA adapters put in its place.

LoRA dropout is forced to 0 on both sides (the demo recipe has none; another recipe's
would be overridden): with dropout, the two sides draw different masks (they run the passages in a different
number of forward passes) and their losses could not be compared after the first
update. Each side runs in its own process, interleaved A, B, A, B (--rounds), so a drift
in the machine's speed hits both; each reports seconds per step (the first step of
every round is warm-up, left out of the median), its peak RSS, and its losses. The
losses of steps 1 and 2 must agree to 1e-5 between the sides, or the benchmark fails.
The last line is `ratio <their s/step / our s/step>`: above 1, ours is faster.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-5


def parse_recipe(recipe: str, extra: list[str]):
    from retriever.driver import make_parser
    from retriever.training import TRAIN_ARGUMENTS

    return make_parser(TRAIN_ARGUMENTS, "peer_train\n").parse_args_into_dataclasses(
        args=["--recipe", recipe, *extra, "--lora_dropout", "0", "--logging_steps", "1", "--output_dir",
              tempfile.mkdtemp()])


def batches_of_items(a, training_args, data_args):
    """The training items of the timed run, in the order both sides take them."""
    from retriever.data import TrainDataset, load_train_groups

    dataset = TrainDataset(load_train_groups(a.train_data), data_args.train_group_size, training_args.seed)
    return [dataset[i] for i in range(training_args.per_device_train_batch_size * a.steps)]


class StepTimer:
    """A TrainerCallback (built lazily: transformers is imported in the child only) timing each step."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            def __init__(self):
                self.times = []

            def on_step_begin(self, *args, **kwargs):
                self.start = time.perf_counter()

            def on_step_end(self, *args, **kwargs):
                self.times.append(time.perf_counter() - self.start)

        return Timer()


def run_ours(a, args, items) -> tuple[list[float], list[float]]:
    import torch
    from torch.utils.data import SequentialSampler

    from retriever.collator import TrainCollator
    from retriever.modeling.encoder import EncoderModel
    from retriever.modeling.loading import load_tokenizer, trainable_base
    from retriever.trainer import RetrieverTrainer
    from retriever.training import embedding_spec

    model_args, data_args, training_args = args
    spec = embedding_spec(model_args, data_args)
    torch.manual_seed(0)  # the LoRA adapters' initial weights: the same on both sides
    model = EncoderModel(trainable_base(model_args.model_name_or_path, model_args), spec=spec)
    tokenizer = load_tokenizer(model_args.model_name_or_path, spec.padding_side)
    timer = StepTimer()
    trainer = RetrieverTrainer(model=model, args=training_args, train_dataset=items,
                               data_collator=TrainCollator(tokenizer, spec), callbacks=[timer])
    trainer._get_train_sampler = lambda *_, **__: SequentialSampler(items)
    trainer.train()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h], timer.times


def run_theirs(a, args, items) -> tuple[list[float], list[float]]:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from torch.utils.data import BatchSampler, SequentialSampler

    from retriever.modeling.encoder import EncoderModel
    from retriever.modeling.loading import load_base_model, load_tokenizer, with_lora
    from retriever.text import join_title
    from retriever.training import embedding_spec

    model_args, data_args, training_args = args
    spec = embedding_spec(model_args, data_args)
    st_dir = tempfile.mkdtemp()  # the untrained base model in the sentence-transformers format, as we save it
    EncoderModel(load_base_model(model_args.model_name_or_path, model_args.drop_last_layers), spec=spec).save(
        st_dir, load_tokenizer(model_args.model_name_or_path, spec.padding_side))
    st = SentenceTransformer(st_dir, device="cpu")
    torch.manual_seed(0)
    st[0].model = with_lora(st[0].model, model_args)
    negatives = data_args.train_group_size - 1
    columns = {"anchor": [item["query"] for item in items]}
    columns["positive"] = [join_title(item["passages"][0]["text"], item["passages"][0].get("title", "")) for item in items]
    for k in range(negatives):
        columns[f"negative_{k + 1}"] = [join_title(item["passages"][k + 1]["text"], item["passages"][k + 1].get("title", ""))
                                        for item in items]
    document = [name for name in columns if name != "anchor"]
    their_args = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(), max_steps=training_args.max_steps,
        per_device_train_batch_size=training_args.per_device_train_batch_size,
        learning_rate=training_args.learning_rate, warmup_steps=training_args.warmup_steps,
        lr_scheduler_type=training_args.lr_scheduler_type, weight_decay=training_args.weight_decay,
        max_grad_norm=training_args.max_grad_norm, optim=training_args.optim, seed=training_args.seed,
        bf16=training_args.bf16, logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True,
        prompts={"anchor": st.prompts["query"], **{name: st.prompts["document"] for name in document}},
        router_mapping={"anchor": "query", **{name: "document" for name in document}},
        batch_sampler=lambda dataset, batch_size, drop_last, **_: BatchSampler(SequentialSampler(dataset), batch_size,
                                                                               drop_last))
    timer = StepTimer()
    trainer = SentenceTransformerTrainer(model=st, args=their_args, train_dataset=Dataset.from_dict(columns),
                                         loss=MultipleNegativesRankingLoss(st, scale=1 / spec.temperature),
                                         callbacks=[timer])
    trainer.train()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h], timer.times


def child(a) -> None:
    """One side, one round: prints {"losses", "seconds", "peak_rss_gib"} as JSON on the last line."""
    args = parse_recipe(a.recipe, ["--max_steps", str(a.steps), "--optim", "adamw_torch"])
    items = batches_of_items(a, args[2], args[1])
    losses, seconds = (run_ours if a.side == "ours" else run_theirs)(a, args, items)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"losses": losses, "seconds": seconds, "peak_rss_gib": peak}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=str(HERE.parent / "retriever/recipes/demo_cpu.json"))
    p.add_argument("--train_data", required=True, help="Tevatron-layout groups (e.g. runs/demo/train_groups.jsonl)")
    p.add_argument("--steps", type=int, default=5, help="steps a round (the first is warm-up)")
    p.add_argument("--rounds", type=int, default=2, help="A, B rounds (each a fresh process per side)")
    p.add_argument("--side", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.side:
        return child(a)
    results = {"ours": [], "theirs": []}
    for round_ in range(a.rounds):
        for side in ("ours", "theirs"):
            done = subprocess.run([sys.executable, __file__, "--side", side, "--recipe", a.recipe, "--train_data",
                                   a.train_data, "--steps", str(a.steps)], capture_output=True, text=True,
                                  env={**os.environ, "TQDM_DISABLE": "1"})
            if done.returncode != 0:
                sys.exit(f"{side}, round {round_ + 1} failed:\n{done.stderr[-3000:]}")
            results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = results[side][-1]
            print(f"round {round_ + 1} {side:6s}: s/step {' '.join(f'{s:.2f}' for s in r['seconds'])}, "
                  f"losses {' '.join(f'{x:.6f}' for x in r['losses'][:3])}, peak RSS {r['peak_rss_gib']:.2f} GiB",
                  flush=True)
    ours, theirs = results["ours"][0]["losses"], results["theirs"][0]["losses"]
    for step in (0, 1):
        if abs(ours[step] - theirs[step]) > TOLERANCE:
            sys.exit(f"FAILED: step {step + 1} losses differ: ours {ours[step]:.7f}, theirs {theirs[step]:.7f} "
                     f"(tolerance {TOLERANCE}): the two sides do not train the same thing")
    median = {side: statistics.median(s for r in runs for s in r["seconds"][1:]) for side, runs in results.items()}
    rss = {side: max(r["peak_rss_gib"] for r in runs) for side, runs in results.items()}
    print(f"steps 1-2 losses agree to {TOLERANCE}: ours {ours[0]:.6f} {ours[1]:.6f}, theirs {theirs[0]:.6f} {theirs[1]:.6f}")
    print(f"median s/step after warm-up ({a.rounds} rounds x {a.steps - 1} steps): ours {median['ours']:.2f}, "
          f"sentence-transformers {median['theirs']:.2f}; peak RSS ours {rss['ours']:.2f} GiB, theirs {rss['theirs']:.2f} GiB")
    print(f"ratio {median['theirs'] / median['ours']:.2f}")


if __name__ == "__main__":
    main()
