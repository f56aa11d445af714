"""Trainer for the retriever: Hugging Face's Trainer plus GradCache and multi-task batching.

Everything else (optimiser, schedule, bf16/fp16, checkpoints, resume, DDP under
torchrun, logging) is the stock Trainer's.
"""
import json
import logging
import math
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.utils import is_torch_bf16_gpu_available

from retriever.grad_cache import grad_cache_step
from retriever.io import NonFiniteLossError, check_counts, check_finite
from retriever.modeling.loading import non_finite_weights
from retriever.multitask import SelfPacedWeights, TaskBatchSampler

logger = logging.getLogger(__name__)


@dataclass
class RetrieverTrainingArguments(TrainingArguments):
    output_dir: str = field(default="runs/train", metadata={"help": "Model, logs and loss curve go here."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Train over an output dir that holds a finished model or the checkpoints of a run with another "
                "recipe (those checkpoints and logs are removed first). Without it such a dir is refused; a "
                "killed run with the same recipe resumes."})
    # The collator needs the raw text fields, which Trainer would otherwise drop.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Kept False: the collator reads every field."})
    logging_steps: float = field(default=1, metadata={"help": "Log the loss every N steps (train_log.json, PNG, W&B)."})
    save_strategy: str = field(default="no", metadata={"help": "no, steps or epoch: write checkpoint-N dirs (each a usable model)."})
    # The Trainer would log a NaN/inf loss as 0.0; the true loss is logged, and a
    # non-finite one stops the run (RetrieverTrainer.training_step).
    logging_nan_inf_filter: bool = field(default=False, metadata={"help": "Kept False: a NaN/inf loss is logged and stops the run."})
    report_to: str = field(default="auto", metadata={
        "help": "'none', 'wandb' (WANDB_MODE=offline works), or 'auto': wandb when WANDB_API_KEY or WANDB_MODE is set, "
                "else none. train_log.json and loss_curve.png are written either way."})
    bf16: Optional[bool] = field(default=None, metadata={
        "help": "bf16 mixed precision. Default: on when torch sees a GPU that supports it, off on a CPU (worth "
                "--bf16 True on a CPU with bf16 units: on a machine without an accelerator it sets --use_cpu, "
                "which the Trainer asks for)."})
    grad_cache: bool = field(default=False, metadata={
        "help": "GradCache: the full contrastive batch in chunk-sized activation memory."})
    gc_q_chunk_size: int = field(default=4, metadata={"help": "GradCache: queries per chunk."})
    gc_p_chunk_size: int = field(default=8, metadata={"help": "GradCache: passages per chunk."})
    negatives_cross_device: bool = field(default=False, metadata={
        "help": "Under torchrun: score each query against the passages of every device."})
    homogeneous_batches: bool = field(default=True, metadata={
        "help": "Several tasks (--train_files): every batch from one task."})
    self_paced: bool = field(default=False, metadata={
        "help": "Several tasks: weight each task's loss by its recent loss (retriever.multitask)."})
    self_paced_momentum: float = field(default=0.9, metadata={"help": "Momentum of the per-task loss averages (--self_paced)."})
    loss: Optional[str] = field(default=None, metadata={
        "help": "The training loss (retriever.modeling.loss.LOSSES): contrastive (the retriever's default), "
                "symmetric (contrastive both ways: queries to passages and positives to queries), "
                "distillation (contrastive + KL towards teacher scores), listwise (the re-ranker's)."})
    distill_weight: Optional[float] = field(default=None, metadata={
        "help": "--loss distillation: weight of the KL term towards teacher scores (groups whose passages "
                "carry 'score'); default 1.0."})
    teacher_temperature: Optional[float] = field(default=None, metadata={
        "help": "--loss distillation: softmax temperature of teacher scores; default 1.0."})
    eval_data_dir: Optional[str] = field(default=None, metadata={
        "help": "A small BEIR directory: MRR@10 and nDCG@10 on its --eval_split queries before and after "
                "training, and every --eval_steps steps (make one with retriever.driver.subset)."})
    eval_split: str = field(default="dev", metadata={"help": "The qrels split of --eval_data_dir."})

    def __post_init__(self):
        if self.bf16 is None:
            self.bf16 = is_torch_bf16_gpu_available()
        elif self.bf16 and not self.use_cpu and not torch.accelerator.is_available():
            self.use_cpu = True  # the Trainer refuses bf16 without a GPU unless told it runs on the CPU
        if self.report_to == "auto":
            self.report_to = "wandb" if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") else "none"
        if self.eval_steps and not self.eval_data_dir:
            raise ValueError("--eval_steps needs --eval_data_dir (the dev set to evaluate on)")
        if self.eval_data_dir and self.eval_steps:
            self.eval_strategy = "steps"
        super().__post_init__()
        check_counts(self, "gc_q_chunk_size", "gc_p_chunk_size", "per_device_train_batch_size")
        given = [f"--{name}" for name in ("distill_weight", "teacher_temperature") if getattr(self, name) is not None]
        if given and self.loss != "distillation":
            raise ValueError(f"{' and '.join(given)} set the distillation loss: add --loss distillation")


def last_complete_checkpoint(output_dir) -> Optional[str]:
    """The newest checkpoint-N of output_dir that was written whole (the Trainer writes
    trainer_state.json last); incomplete ones, left by a run killed while saving, are removed."""
    checkpoints = sorted((p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                         key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in checkpoints:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            return str(checkpoint)
        except (OSError, ValueError):
            logger.warning("%s was not written whole (a run killed while saving?): removing it", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def unwrap(model):
    """The model inside a DDP (or other) wrapper."""
    return getattr(model, "module", model)


def loss_scale(model) -> int:
    """Factor the model's training loss carries on top of the true loss (EncoderModel.loss_scale)."""
    return getattr(unwrap(model), "loss_scale", 1)


class DatasetEpochCallback(TrainerCallback):
    """Passes the epoch that starts (also a resumed one) to the training dataset, before
    its batches are drawn, so each epoch samples its own negatives."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(math.floor(state.epoch + 1e-9))


class RetrieverTrainer(Trainer):
    """Trainer whose args are RetrieverTrainingArguments.

    For a model of this project (it carries its `spec`) every checkpoint-N is the same
    artifact as the final model (the model's own `save`: weights or LoRA adapter, tokenizer,
    spec, sentence-transformers files), so encode and search take it like a final model;
    resuming reads the weights back from it. With an eval_dataset (a
    retriever.dev_eval.DevSet), `evaluate` reports MRR@10 / nDCG@10 on it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(DatasetEpochCallback(self.train_dataset))
        self.task_weights = SelfPacedWeights(self.args.self_paced_momentum) if self.args.self_paced else None

    # ---- multi-task ---------------------------------------------------------------
    def get_train_dataloader(self):
        tasks = getattr(self.train_dataset, "tasks", None)
        if not (self.args.homogeneous_batches and tasks and len(set(tasks)) > 1):
            return super().get_train_dataloader()
        sampler = TaskBatchSampler(tasks, self._train_batch_size, self.args.seed)
        loader = DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers)
        return self.accelerator.prepare(loader)

    def task_weight(self, task: Optional[str], loss: torch.Tensor) -> float:
        """Self-paced weight of this batch's task (1 when off or the batch has no task)."""
        if self.task_weights is None or task is None:
            return 1.0
        return self.task_weights.update(task, loss.item() / loss_scale(self.model))

    def log(self, logs: dict, *args, **kwargs):
        if self.task_weights is not None and "loss" in logs:
            logs = {**logs, **self.task_weights.state()}
        super().log(logs, *args, **kwargs)

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False):
        """Every checkpoint goes through here: weights that hold NaN/inf are never saved."""
        broken = non_finite_weights(self.model)
        if broken:
            raise NonFiniteLossError(f"weights hold NaN/inf at step {self.state.global_step} (e.g. {broken[0]}); "
                                     "stopping without saving. Earlier checkpoints are kept.")
        super().save_model(output_dir, _internal_call)

    def _save(self, output_dir: Optional[str] = None, state_dict=None):
        if not hasattr(unwrap(self.model), "spec"):
            return super()._save(output_dir, state_dict)
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        # merge_lora=False: merging would change the model that goes on training
        unwrap(self.model).save(output_dir, self.processing_class, merge_lora=False)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None):
        if not hasattr(unwrap(self.model), "spec"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        unwrap(model if model is not None else self.model).load_weights(resume_from_checkpoint)

    # ---- evaluation on the dev set ------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        from retriever.dev_eval import evaluate_retriever

        dev = eval_dataset if eval_dataset is not None else self.eval_dataset
        scores = evaluate_retriever(unwrap(self.model), self.processing_class, dev,
                                    self.args.per_device_eval_batch_size,
                                    reading=getattr(self.data_collator, "spec", None))  # as training reads
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in scores.items()}
        logger.info("dev set at step %d: %s", self.state.global_step,
                    ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ---- loss and steps ---------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task = inputs.pop("task", None)
        outputs = model(**inputs)
        loss = outputs.loss * self.task_weight(task, outputs.loss)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.grad_cache:
            loss = self.grad_cache_training_step(model, inputs)
        else:
            loss = super().training_step(model, inputs, num_items_in_batch)
        check_finite("loss", loss, self.state.global_step + 1)
        # Log the true loss: cross-device training multiplies it by the world size (see
        # modeling.loss.CrossDeviceNegatives), which is a gradient correction, not a worse loss.
        return loss / loss_scale(model)

    def grad_cache_training_step(self, model, inputs) -> torch.Tensor:
        model.train()
        inputs = self._prepare_inputs(inputs)
        steps = self.current_gradient_accumulation_steps
        task, teacher = inputs.get("task"), inputs.get("teacher_scores")

        def backward(surrogate):
            self.accelerator.backward(surrogate / steps)

        def loss_fn(q_reps, p_reps):  # the model's own loss object, on the whole batch's embeddings
            loss = unwrap(model).loss(unwrap(model), q_reps, p_reps, teacher)[0]
            return loss * self.task_weight(task, loss)

        # Embedding goes through `model` (the DDP wrapper when distributed), so DDP's
        # gradient hooks see every chunk; all but the last chunk skip the all-reduce.
        no_sync = getattr(model, "no_sync", nullcontext)
        with self.compute_loss_context_manager():
            loss = grad_cache_step(
                embed_query=lambda chunk: model(query=chunk).q_reps,
                embed_passage=lambda chunk: model(passage=chunk).p_reps,
                loss_fn=loss_fn, query=inputs["query"], passage=inputs["passage"],
                q_chunk_size=self.args.gc_q_chunk_size, p_chunk_size=self.args.gc_p_chunk_size,
                backward=backward, no_sync=no_sync,
            )
        return loss / steps
