"""benchmarks/train_throughput.py on a tiny model: both sides step, in fp32 and in bf16 on a CPU."""
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_sides_step_and_print_their_throughput(tiny_model_dir, tiny_groups, tmp_path, precision):
    flags = ["--bf16"] if precision == "bf16" else []  # on a CPU: RetrieverTrainingArguments sets use_cpu
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_throughput.py"), "--model", tiny_model_dir,
                           "--train_data", str(tiny_groups), "--steps", "2", "--batch", "2", "--max_len", "16",
                           *flags], env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"real tokens, {precision}, cpu" in done.stdout
    assert "ratio ours/bare" in done.stdout
