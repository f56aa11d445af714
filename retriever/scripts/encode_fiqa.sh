#!/usr/bin/env bash
# Step 2 of 3: encode the FiQA corpus and test queries with the trained model.
# FiQA's corpus is not shipped: put the BEIR fiqa folder (corpus.jsonl, queries.jsonl,
# qrels/) at DATA_DIR, or point DATA_DIR at any BEIR directory (e.g. ../shared/data/scifact).
set -euo pipefail
PYTHON=${PYTHON:-python}

MODEL_DIR=${MODEL_DIR:-runs/msmarco-model}   # output of train_msmarco.sh (or a base model)
DATA_DIR=${DATA_DIR:-../shared/data/fiqa}
SPLIT=${SPLIT:-test}
EMB_DIR=${EMB_DIR:-runs/fiqa-embeddings}
BATCH_SIZE=${BATCH_SIZE:-32}
NUM_SHARDS=${NUM_SHARDS:-1}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-}             # empty: the lengths the model was trained with
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-}

echo "[encode] model=$MODEL_DIR data=$DATA_DIR split=$SPLIT shards=$NUM_SHARDS"
echo "[encode] writes $EMB_DIR/corpus.shard*.npz and $EMB_DIR/queries.npz"
for ((shard = 0; shard < NUM_SHARDS; shard++)); do
  $PYTHON -m retriever.driver.encode --model_name_or_path "$MODEL_DIR" --data_dir "$DATA_DIR" \
    --num_shards "$NUM_SHARDS" --shard_id "$shard" --batch_size "$BATCH_SIZE" \
    --output_file "$EMB_DIR/corpus.shard$shard.npz" ${PASSAGE_MAX_LEN:+--max_len $PASSAGE_MAX_LEN} ${EXTRA_ARGS:-}
done
$PYTHON -m retriever.driver.encode --model_name_or_path "$MODEL_DIR" --data_dir "$DATA_DIR" \
  --encode_is_query --split "$SPLIT" --batch_size "$BATCH_SIZE" \
  --output_file "$EMB_DIR/queries.npz" ${QUERY_MAX_LEN:+--max_len $QUERY_MAX_LEN} ${EXTRA_ARGS:-}
