#!/usr/bin/env bash
# Step 2 of 3: encode the FiQA corpus and test queries with the trained model.
# Reads the model at MODEL_DIR (train_msmarco.sh's OUTPUT_DIR) and the BEIR directory DATA_DIR; writes
# EMB_DIR/corpus.npz and EMB_DIR/queries.npz (embeddings, ids, and the model and text settings that
# search checks); prints a progress bar per file.
# FiQA's corpus is not shipped: put the BEIR fiqa folder (corpus.jsonl, queries.jsonl, qrels/) at
# DATA_DIR, or point DATA_DIR at any BEIR directory (e.g. ../shared/data/scifact). On a CPU, SmolLM2
# encodes a few passages a second: FiQA's 57,638 take hours there (retriever/README.md, "The offline
# route", encodes a subset). A trained model reads text as it was trained (its embedding_spec.json);
# the text settings below override that, e.g. for a base model.
set -euo pipefail
source "$(dirname "$0")/common.sh"
script_start "$0" "$@"
retired BATCH_SIZE "set ENCODE_BATCH_SIZE=${BATCH_SIZE:-} instead (BATCH_SIZE was renamed)"
retired NUM_SHARDS "one process writes EMB_DIR/corpus.npz; several GPUs or machines: docs/scaling.md"
place MODEL_DIR runs/msmarco-model "the trained model (train_msmarco.sh's OUTPUT_DIR), or a base model" \
  --model_name_or_path
place DATA_DIR ../shared/data/fiqa "a BEIR directory: corpus.jsonl, queries.jsonl, qrels/" --data_dir
place SPLIT test "the queries of qrels/SPLIT.tsv are encoded"
place EMB_DIR runs/fiqa-embeddings "where corpus.npz and queries.npz go"
setting ENCODE_BATCH_SIZE --batch_size "texts per forward pass (default 32)"
setting QUERY_TEMPLATE --query_template "override the model's own text format, e.g. for a base model"
setting PASSAGE_TEMPLATE --passage_template "the same for passages"
setting APPEND_EOS --append_eos "True/False"
setting QUERY_MAX_LEN --query_max_len "tokens per query"
setting PASSAGE_MAX_LEN --passage_max_len "tokens per passage"
run_driver encode --model_name_or_path "$MODEL_DIR" --data_dir "$DATA_DIR" --output_file "$EMB_DIR/corpus.npz"
run_driver encode --model_name_or_path "$MODEL_DIR" --data_dir "$DATA_DIR" --encode_is_query --split "$SPLIT" \
  --output_file "$EMB_DIR/queries.npz"
