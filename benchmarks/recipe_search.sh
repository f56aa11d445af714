#!/usr/bin/env bash
# Recipe search for the offline default model (SmolLM2-135M-Instruct), by hand, on 2 CPU cores:
# each probe changes one choice of the base recipe, trains, and is scored on the same
# SciFact test subset (300 queries, 500 docs). Results: $RUN_DIR/report.md (+ loss quarters).
#
#   bash benchmarks/recipe_search.sh                  # every probe below (about an hour)
#   PROBES="base t05" bash benchmarks/recipe_search.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}
DATA=${DATA:-$HERE/../../shared/data/scifact}
RUN_DIR=${RUN_DIR:-runs/recipe}
MODEL=${MODEL:-}   # the base model; empty: the drivers' default
STEPS=${STEPS:-20}
PASSAGE_LEN=${PASSAGE_LEN:-64}
PROBES=${PROBES:-zs-plain zs-template zs-template-eos zs-template-b base eos t05 lr5e-4 full group4 warmup0}

T_A='This sentence : "{text}" means in one word:"'
T_BQ='This question : "{text}" means in one word:"'
T_BP='This passage : "{text}" means in one word:"'

mkdir -p "$RUN_DIR"
[[ -f $RUN_DIR/train_groups.jsonl ]] || $PYTHON -m retriever.driver.mine --data_dir "$DATA" --split train \
  --output_file "$RUN_DIR/train_groups.jsonl"
[[ -f $RUN_DIR/data/corpus.jsonl ]] || $PYTHON -m retriever.driver.subset --data_dir "$DATA" --split test \
  --n_docs 500 --output_dir "$RUN_DIR/data"

# evaluate NAME MODEL_DIR [encode flags...]: encode the subset, search, metrics in $RUN_DIR/NAME
evaluate() {
  local name=$1 model=$2; shift 2
  local args=(${model:+--model_name_or_path "$model"} --data_dir "$RUN_DIR/data" --batch_size 16)
  $PYTHON -m retriever.driver.encode "${args[@]}" --query_max_len 32 --passage_max_len "$PASSAGE_LEN" \
    --output_file "$RUN_DIR/$name/emb/corpus.npz" "${passage_flags[@]}"
  $PYTHON -m retriever.driver.encode "${args[@]}" --encode_is_query --query_max_len 32 --passage_max_len "$PASSAGE_LEN" \
    --output_file "$RUN_DIR/$name/emb/queries.npz" "${query_flags[@]}"
  $PYTHON -m retriever.driver.search --query_embeddings "$RUN_DIR/$name/emb/queries.npz" \
    --corpus_embeddings "$RUN_DIR/$name/emb/corpus.npz" --qrels "$RUN_DIR/data" --output_dir "$RUN_DIR/$name" \
    --name "$name"
}

# train NAME [train flags...]: the base recipe, with the given flags changed (later flags win)
train() {
  local name=$1; shift
  local t=$SECONDS
  $PYTHON -m retriever.driver.train ${MODEL:+--model_name_or_path "$MODEL"} --train_data "$RUN_DIR/train_groups.jsonl" \
    --output_dir "$RUN_DIR/$name/model" --pooling last --lora True --learning_rate 2e-4 --temperature 0.02 \
    --warmup_steps 2 --train_group_size 2 --per_device_train_batch_size 8 --max_steps "$STEPS" \
    --query_max_len 32 --passage_max_len "$PASSAGE_LEN" \
    --query_template "$T_A" --passage_template "$T_A" --append_eos False "$@"
  echo "$name train_seconds=$((SECONDS - t))" >> "$RUN_DIR/times.txt"
  passage_flags=() query_flags=()
  evaluate "$name" "$RUN_DIR/$name/model"
}

# zero_shot NAME QUERY_TEMPLATE PASSAGE_TEMPLATE APPEND_EOS
zero_shot() {
  passage_flags=(--query_template "$2" --passage_template "$3" --append_eos "$4")
  query_flags=("${passage_flags[@]}")
  evaluate "$1" "$MODEL"
}

for probe in $PROBES; do
  echo "===== $probe ====="
  case $probe in
    zs-plain)        zero_shot "$probe" '{text}' '{text}' True ;;
    zs-template)     zero_shot "$probe" "$T_A" "$T_A" False ;;
    zs-template-eos) zero_shot "$probe" "$T_A" "$T_A" True ;;
    zs-template-b)   zero_shot "$probe" "$T_BQ" "$T_BP" False ;;
    base)     train "$probe" ;;
    eos)      train "$probe" --append_eos True ;;
    t05)      train "$probe" --temperature 0.05 ;;
    t01)      train "$probe" --temperature 0.01 ;;
    lr1e-4)   train "$probe" --learning_rate 1e-4 ;;
    lr5e-4)   train "$probe" --learning_rate 5e-4 ;;
    lr1e-3)   train "$probe" --learning_rate 1e-3 ;;
    lr5e-4-t05) train "$probe" --learning_rate 5e-4 --temperature 0.05 ;;
    full)     train "$probe" --lora False --learning_rate 2e-5 ;;
    group4)   train "$probe" --train_group_size 4 ;;
    warmup0)  train "$probe" --warmup_steps 0 ;;
    template-b) train "$probe" --query_template "$T_BQ" --passage_template "$T_BP" ;;
    *) echo "unknown probe $probe" >&2; exit 2 ;;
  esac
done

$PYTHON -m retriever.driver.report --run_dir "$RUN_DIR" --systems $PROBES \
  --title "recipe search: SmolLM2-135M-Instruct, SciFact test (300 q, 500 docs), passages $PASSAGE_LEN tokens, $STEPS steps"
# first and last quarter of each trained probe's logged losses
$PYTHON - "$RUN_DIR" $PROBES <<'EOF'
import json, sys
from pathlib import Path
for name in sys.argv[2:]:
    log = Path(sys.argv[1]) / name / "model" / "train_log.json"
    if log.is_file():
        losses = [e["loss"] for e in json.loads(log.read_text()) if "loss" in e]
        q = max(1, len(losses) // 4)
        first, last = sum(losses[:q]) / q, sum(losses[-q:]) / q
        print(f"{name}: loss first quarter {first:.3f}, last quarter {last:.3f}, ratio {last / first:.2f}")
EOF
cat "$RUN_DIR/times.txt" 2>/dev/null || true
