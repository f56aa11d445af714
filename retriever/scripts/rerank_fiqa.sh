#!/usr/bin/env bash
# After search_fiqa.sh: re-score each query's top passages with a cross-encoder.
# First trains the re-ranker into RERANKER_DIR from RECIPE (default reranker_gpu, for a GPU) on
# TRAIN_DATA; a rerun with the same settings finds it trained and goes on. Then reads RUN_FILE
# (search_fiqa.sh's run) and DATA_DIR; writes OUTPUT_DIR/run.trec and metrics.json. TRAIN_ARGS: more
# flags for the training, EXTRA_ARGS for the re-ranking.
set -euo pipefail
source "$(dirname "$0")/common.sh"
script_start "$0" "$@"
place RECIPE reranker_gpu "the re-ranker's recipe: a name in retriever/recipes/ or a JSON file"
place TRAIN_DATA Tevatron/msmarco-passage "its training groups: hub dataset, JSONL file or directory" --train_data
place RERANKER_DIR runs/reranker "where the re-ranker is trained"
place RUN_FILE runs/fiqa-search/run.trec "search_fiqa.sh's run"
place DATA_DIR ../shared/data/fiqa "the BEIR directory that run was searched on"
place SPLIT test "its qrels split"
place OUTPUT_DIR runs/fiqa-rerank "run.trec and metrics.json"
setting MODEL --model_name_or_path "the re-ranker's base model"
setting GROUP_SIZE --train_group_size "pairs per query in the listwise loss"
setting TRAIN_BATCH_SIZE --per_device_train_batch_size "queries per step"
setting LEARNING_RATE --learning_rate "peak learning rate"
setting MAX_STEPS --max_steps "training steps"
setting LORA --lora "True/False"
EXTRA_ARGS=${TRAIN_ARGS:-} run_driver train_reranker --recipe "$RECIPE" --train_data "$TRAIN_DATA" --output_dir "$RERANKER_DIR"
FLAGS=()  # the re-ranking's own
setting RERANK_DEPTH --rerank_depth "passages re-scored per query (default 100)"
run_driver rerank --model_name_or_path "$RERANKER_DIR" --run_file "$RUN_FILE" \
  --data_dir "$DATA_DIR" --split "$SPLIT" --output_dir "$OUTPUT_DIR"
