#!/usr/bin/env bash
# Multi-task embedder vs single-task embedders, offline (after LLM-Embedder):
#   two tasks (SciFact: claim -> scientific abstract; NFCorpus: nutrition question -> medical
#   document), BM25-mined training groups for each; one model per task, and one multi-task
#   model (task instructions, one-task batches, self-paced task weights) trained on both
#   with as many steps as the two single-task models together; all evaluated on both tasks.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
PYTHON=${PYTHON:-python}

DATA_ROOT=${DATA_ROOT:-$HERE/../../../shared/data}
TASKS=${TASKS:-scifact nfcorpus}
RUN_DIR=${RUN_DIR:-runs/multitask}
RECIPE=${RECIPE:-$HERE/../recipes/multitask_cpu.json}   # every model's training recipe (base model, pooling, LoRA, ...)
MAX_STEPS=${MAX_STEPS:-16}                              # per single-task model; the multi-task model trains for their sum
EVAL_QUERIES=${EVAL_QUERIES:-50} EVAL_DOCS=${EVAL_DOCS:-200}   # per task's test subset
# train_model OUTPUT_DIR STEPS FLAG...: the recipe, then this experiment's data, steps and task flags
train_model() {
  local out=$1 steps=$2
  shift 2
  "$PYTHON" -m retriever.driver.train --recipe "$RECIPE" --max_steps "$steps" --output_dir "$out" "$@"
}
mkdir -p "$RUN_DIR"
stage() { echo; echo "===== $1 ====="; }
start=$SECONDS

# one instruction per task, LLM-Embedder style (a task of TASKS without its own: "<task> question/document: ")
instruction() {
  case $1 in
    scifact) echo '"query_prefix": "Claim to verify: ", "passage_prefix": "Scientific abstract: "' ;;
    nfcorpus) echo '"query_prefix": "Health question: ", "passage_prefix": "Medical article: "' ;;
    *) echo "\"query_prefix\": \"$1 question: \", \"passage_prefix\": \"$1 document: \"" ;;
  esac
}
entries=()
for task in $TASKS; do entries+=("\"$task\": {$(instruction "$task")}"); done
(IFS=,; echo "{${entries[*]}}") > "$RUN_DIR/tasks.json"

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
  train_model "$RUN_DIR/model-$task" "$MAX_STEPS" --train_data "$RUN_DIR/$task.jsonl"
  times+=("train-$task=$((SECONDS - t))")
done

stage "multi-task model: ${TASKS// /+}, $((MAX_STEPS * $(wc -w <<< "$TASKS"))) steps"
t=$SECONDS
train_model "$RUN_DIR/model-multitask" $((MAX_STEPS * $(wc -w <<< "$TASKS"))) \
  --train_files "${files[@]}" --task_instructions "$RUN_DIR/tasks.json" --self_paced True
times+=("train-multitask=$((SECONDS - t))")

systems=(bm25)
for model in $TASKS multitask; do systems+=("model-$model"); done
for task in $TASKS; do
  for model in $TASKS multitask; do
    stage "$task: evaluate model-$model"
    task_flag=(); [[ $model == multitask ]] && task_flag=(--task "$task")
    "$PYTHON" -m retriever.driver.evaluate --model_name_or_path "$RUN_DIR/model-$model" --data_dir "$RUN_DIR/$task/data" \
      --output_dir "$RUN_DIR/$task/model-$model" --name "trained on $model" --save_index False "${task_flag[@]}"
  done
done

stage "report"
base=$(json_field "$RUN_DIR/model-multitask/embedding_spec.json" base_model)
"$PYTHON" -m retriever.driver.report --run_dir "$RUN_DIR" --sets $TASKS --systems "${systems[@]}" \
  --title "multi-task vs single-task, $(basename "$base")" --summary "Training seconds: ${times[*]}."
echo "[run_multitask] done in $((SECONDS - start)) s: $RUN_DIR/report.md"
