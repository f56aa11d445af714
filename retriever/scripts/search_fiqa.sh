#!/usr/bin/env bash
# Step 3 of 3: FAISS search over the corpus embeddings, TREC run, MRR@10 / nDCG@10 / Recall@100.
# Reads EMB_DIR (encode_fiqa.sh's output) and DATA_DIR/qrels/SPLIT.tsv; writes OUTPUT_DIR/run.trec
# (the top passages of every query) and OUTPUT_DIR/metrics.json; prints the metrics table.
# MRR@10 is the number the homework reports.
set -euo pipefail
source "$(dirname "$0")/common.sh"
script_start "$0" "$@"
place EMB_DIR runs/fiqa-embeddings "encode_fiqa.sh's corpus.npz and queries.npz"
place DATA_DIR ../shared/data/fiqa "for qrels/SPLIT.tsv"
place SPLIT test "the qrels to evaluate against"
place OUTPUT_DIR runs/fiqa-search "run.trec and metrics.json" --output_dir
setting DEPTH --depth "passages retrieved per query (default 100)"
setting INDEX_TYPE --index_type "flat (exact, the default), ivf or hnsw (approximate)"
setting NAME --name "system name in the run and the metrics (default dense)"
run_driver search --query_embeddings "$EMB_DIR/queries.npz" --corpus_embeddings "$EMB_DIR/corpus*.npz" \
  --qrels "$DATA_DIR" --split "$SPLIT" --output_dir "$OUTPUT_DIR"
