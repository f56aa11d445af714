#!/usr/bin/env bash
# Step 2 of 3: encode the FiQA corpus and test queries with the trained model.
# Reads the model at MODEL_DIR (train_msmarco.sh's OUTPUT_DIR) and the BEIR directory DATA_DIR;
# writes EMB_DIR/corpus.shard<i>.npz and EMB_DIR/queries.npz (embeddings, ids, and the model and
# text settings that search checks); prints a progress bar per file.
# FiQA's corpus is not shipped: put the BEIR fiqa folder (corpus.jsonl, queries.jsonl,
# qrels/) at DATA_DIR, or point DATA_DIR at any BEIR directory (e.g. ../shared/data/scifact).
# A trained model reads text as it was trained (template, EOS, lengths: its embedding_spec.json);
# the *_TEMPLATE / APPEND_EOS / *_MAX_LEN variables override that, e.g. for a base model.
# On a CPU, SmolLM2 encodes about 3 passages a second: the 57,638 FiQA passages take hours there
# (retriever/README.md, "The offline route", encodes a subset).
set -euo pipefail
set -f  # EXTRA_ARGS is split into words, never glob-expanded
source "$(dirname "$0")/common.sh"
script_args "$0" "$@"
renamed_variable BATCH_SIZE ENCODE_BATCH_SIZE
PYTHON=${PYTHON:-python}

MODEL_DIR=${MODEL_DIR:-runs/msmarco-model}   # output of train_msmarco.sh (or a base model)
DATA_DIR=${DATA_DIR:-../shared/data/fiqa}
SPLIT=${SPLIT:-test}
EMB_DIR=${EMB_DIR:-runs/fiqa-embeddings}
ENCODE_BATCH_SIZE=${ENCODE_BATCH_SIZE:-32}
NUM_SHARDS=${NUM_SHARDS:-1}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-}             # empty: as the model was trained
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-}
QUERY_TEMPLATE=${QUERY_TEMPLATE:-}
PASSAGE_TEMPLATE=${PASSAGE_TEMPLATE:-}
APPEND_EOS=${APPEND_EOS:-}
read -ra extra <<< "${EXTRA_ARGS:-}"
if [[ $MODEL_DIR != pypi:* && $MODEL_DIR != *.gguf ]]; then  # a directory training writes
  if [[ -d $MODEL_DIR && ! -f $MODEL_DIR/config.json && ! -f $MODEL_DIR/adapter_config.json ]] ||
     [[ ! -e $MODEL_DIR && ( $MODEL_DIR == runs/* || $MODEL_DIR == ./* || $MODEL_DIR == /* ) ]]; then
    no_trained_model "$MODEL_DIR" MODEL_DIR
  fi
fi
if (( NUM_SHARDS < 1 )); then
  echo "error: NUM_SHARDS must be >= 1; got $NUM_SHARDS" >&2
  exit 2
fi
# the driver's errors name these variables beside its flags
export RETRIEVER_SCRIPT_VARS="--model_name_or_path=MODEL_DIR --batch_size=ENCODE_BATCH_SIZE --num_shards=NUM_SHARDS"
# queries and corpus get the same text settings: search checks that they match
common=(--model_name_or_path "$MODEL_DIR" --data_dir "$DATA_DIR" --batch_size "$ENCODE_BATCH_SIZE"
        ${APPEND_EOS:+--append_eos "$APPEND_EOS"} ${QUERY_TEMPLATE:+--query_template "$QUERY_TEMPLATE"}
        ${PASSAGE_TEMPLATE:+--passage_template "$PASSAGE_TEMPLATE"} ${QUERY_MAX_LEN:+--query_max_len "$QUERY_MAX_LEN"}
        ${PASSAGE_MAX_LEN:+--passage_max_len "$PASSAGE_MAX_LEN"})

echo "[encode] model=$MODEL_DIR data=$DATA_DIR split=$SPLIT shards=$NUM_SHARDS batch=$ENCODE_BATCH_SIZE"
echo "[encode] writes $EMB_DIR/corpus.shard*.npz and $EMB_DIR/queries.npz"
for ((shard = 0; shard < NUM_SHARDS; shard++)); do
  "$PYTHON" -m retriever.driver.encode "${common[@]}" --num_shards "$NUM_SHARDS" --shard_id "$shard" \
    --output_file "$EMB_DIR/corpus.shard$shard.npz" "${extra[@]}"
done
"$PYTHON" -m retriever.driver.encode "${common[@]}" --encode_is_query --split "$SPLIT" \
  --output_file "$EMB_DIR/queries.npz" "${extra[@]}"
