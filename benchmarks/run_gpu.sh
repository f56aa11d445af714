#!/usr/bin/env bash
# The GPU benchmark figures of docs/benchmarks.md, in one go (run by hand on a machine with a GPU):
# encode throughput (bf16 and fp32), train throughput (bf16), GradCache memory and time.
#   DATA=../shared/data/scifact bash benchmarks/run_gpu.sh
set -euo pipefail
PYTHON=${PYTHON:-python}
DATA=${DATA:-../shared/data/scifact}
WORK=${WORK:-runs/bench-gpu}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
mkdir -p "$WORK"
[[ -f $WORK/train_groups.jsonl ]] ||
  $PYTHON -m retriever.driver.mine --data_dir "$DATA" --split train --output_file "$WORK/train_groups.jsonl"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for precision in --bf16 ""; do
  echo "== encode throughput ${precision:-fp32}"
  $PYTHON benchmarks/encode_throughput.py --data_dir "$DATA" --n_texts 0 --max_len 256 --batch_size 128 \
    --repeat 3 $precision 2>&1 | grep -v "^encode" | tail -4
done
echo "== train throughput (bf16, full fine-tune)"
$PYTHON benchmarks/train_throughput.py --train_data "$WORK/train_groups.jsonl" --steps 20 --batch 32 --group 4 \
  --max_len 128 --bf16 2>&1 | tail -4
echo "== GradCache (fp32, full fine-tune)"
$PYTHON benchmarks/grad_cache_memory.py --train_data "$WORK/train_groups.jsonl" --batch 32 --group 4 \
  --passage_len 128 --q_chunk 8 --p_chunk 32 2>&1 | tail -4
