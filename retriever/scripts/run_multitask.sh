#!/usr/bin/env bash
# Multi-task embedder vs single-task embedders, offline (after LLM-Embedder):
# python -m retriever.driver.run_multitask (its --help says what it does), with every variable below
# that you set passed as its flag.
set -euo pipefail
source "$(dirname "$0")/common.sh"
script_start "$0" "$@"
setting RECIPE --train_recipe "every model's recipe (default multitask_cpu)"
setting MODEL --model_name_or_path "the base model (default: the recipe's, else the driver's)"
setting DATA_ROOT --data_root "where the tasks' BEIR dirs are (default ../shared/data)"
setting TASKS --tasks "the tasks: BEIR dirs under DATA_ROOT (default 'scifact nfcorpus')"
setting RUN_DIR --run_dir "where everything goes (default runs/multitask)"
setting MAX_STEPS --max_steps "per single-task model; the multi-task model trains for their sum (default 16)"
setting EVAL_QUERIES --eval_queries "random test queries per task (default 50)"
setting EVAL_DOCS --eval_docs "their judged docs + random others (default 200)"
run_driver run_multitask
