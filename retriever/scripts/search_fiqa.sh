#!/usr/bin/env bash
# Step 3 of 3: FAISS search over the corpus embeddings, TREC run, MRR@10 / nDCG@10 / Recall@100.
# Reads EMB_DIR (encode_fiqa.sh's output) and DATA_DIR/qrels/SPLIT.tsv; writes OUTPUT_DIR/run.trec
# (the top DEPTH passages of every query) and OUTPUT_DIR/metrics.json; prints the metrics table.
# MRR@10 is the number the homework reports.
set -euo pipefail
set -f  # EXTRA_ARGS is split into words, never glob-expanded
source "$(dirname "$0")/common.sh"
script_args "$0" "$@"
PYTHON=${PYTHON:-python}

EMB_DIR=${EMB_DIR:-runs/fiqa-embeddings}
DATA_DIR=${DATA_DIR:-../shared/data/fiqa}    # for qrels/<SPLIT>.tsv
SPLIT=${SPLIT:-test}
OUTPUT_DIR=${OUTPUT_DIR:-runs/fiqa-search}
DEPTH=${DEPTH:-100}
INDEX_TYPE=${INDEX_TYPE:-flat}
NAME=${NAME:-dense}
read -ra extra <<< "${EXTRA_ARGS:-}"
if [[ ! -f $EMB_DIR/queries.npz ]]; then
  echo "error: no embeddings at $EMB_DIR (EMB_DIR=$EMB_DIR): run retriever/scripts/encode_fiqa.sh first" >&2
  exit 2
fi

echo "[search] embeddings=$EMB_DIR qrels=$DATA_DIR/qrels/$SPLIT.tsv index=$INDEX_TYPE depth=$DEPTH"
echo "[search] writes $OUTPUT_DIR/run.trec and $OUTPUT_DIR/metrics.json"
RETRIEVER_SCRIPT_VARS="--depth=DEPTH --index_type=INDEX_TYPE --output_dir=OUTPUT_DIR" \
"$PYTHON" -m retriever.driver.search --query_embeddings "$EMB_DIR/queries.npz" \
  --corpus_embeddings "$EMB_DIR/corpus*.npz" --qrels "$DATA_DIR" --split "$SPLIT" \
  --depth "$DEPTH" --index_type "$INDEX_TYPE" --output_dir "$OUTPUT_DIR" --name "$NAME" "${extra[@]}"
