"""Cross-device negatives, checked with 2 CPU processes on the gloo backend."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from retriever.distributed import gather_with_grad
from retriever.modeling.encoder import EncoderModel
from retriever.modeling.loss import ContrastiveLoss, CrossDeviceNegatives
from retriever.spec import EmbeddingSpec
from retriever.modeling.loading import load_base_model

REPO = Path(__file__).resolve().parents[1]
WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model(model_dir, cross_device):
    torch.manual_seed(0)
    loss = CrossDeviceNegatives(ContrastiveLoss()) if cross_device else ContrastiveLoss()
    return EncoderModel(load_base_model(model_dir), spec=EmbeddingSpec(pooling="last", temperature=0.05), loss=loss)


def rows(batch, start, stop):
    return {k: v[start:stop] for k, v in batch.items()}


def ddp_worker(rank, port, model_dir, batch, n_queries, out_dir):
    """One rank: its half of the queries (and their passages) through a DDP-wrapped model."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        # gather keeps exactly this rank's slot differentiable
        local = torch.full((2, 3), float(rank), requires_grad=True)
        gathered = gather_with_grad(local)
        assert gathered[:, 0].tolist() == [0, 0, 1, 1]
        gathered.sum().backward()
        assert local.grad.eq(1).all()

        model = torch.nn.parallel.DistributedDataParallel(make_model(model_dir, cross_device=True))
        q_per_rank, group = n_queries // WORLD, batch["passage"]["input_ids"].size(0) // n_queries
        q = rows(batch["query"], rank * q_per_rank, (rank + 1) * q_per_rank)
        p = rows(batch["passage"], rank * q_per_rank * group, (rank + 1) * q_per_rank * group)
        out = model(query=q, passage=p)
        out.loss.backward()  # DDP averages the two ranks' gradients here
        torch.save({"loss": out.loss.detach() / model.module.loss_scale, "scores": out.scores.detach(),
                    "grads": {n: p.grad for n, p in model.module.named_parameters()}},
                   f"{out_dir}/rank{rank}.pt")
        dist.barrier()  # both ranks done before either tears the group down (a rank leaving early can abort gloo)
    finally:
        dist.destroy_process_group()


def test_cross_device_negatives_equal_one_device_with_the_whole_batch(tiny_model_dir, tokenizer,
                                                                      tiny_groups, tmp_path):
    from tests.test_grad_cache import batch_of

    batch = batch_of(tokenizer, tiny_groups, n_queries=4, group_size=3)
    mp.spawn(ddp_worker, args=(free_port(), tiny_model_dir, batch, 4, str(tmp_path)), nprocs=WORLD)

    single = make_model(tiny_model_dir, cross_device=False)
    out = single(**batch)
    out.loss.backward()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        # each rank scores its 2 queries against all 4 x 3 passages: the whole batch's columns
        assert got["scores"].shape == (4, 12)
        torch.testing.assert_close(got["loss"], out.loss.detach(), rtol=1e-5, atol=1e-6)
        for name, param in single.named_parameters():
            torch.testing.assert_close(got["grads"][name], param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_torchrun_trains_with_cross_device_negatives_and_grad_cache(tiny_model_dir, tiny_groups, tmp_path):
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD),
           "--master_port", str(free_port()), "-m", "retriever.driver.train",
           "--model_name_or_path", tiny_model_dir, "--train_data", str(tiny_groups), "--output_dir", str(out),
           "--max_steps", "2", "--per_device_train_batch_size", "2", "--train_group_size", "3",
           "--query_max_len", "8", "--passage_max_len", "12", "--ddp_backend", "gloo",
           "--negatives_cross_device", "--grad_cache", "--gc_q_chunk_size", "1", "--gc_p_chunk_size", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    log = json.loads((out / "train_log.json").read_text())
    assert [e["step"] for e in log] == [1, 2]
    assert (out / "model.safetensors").is_file()
    # the same run again: every rank sees there is nothing to train (rank 0 alone returning would
    # leave the others waiting for it in their first all_gather)
    weights = (out / "model.safetensors").read_bytes()
    cmd[cmd.index("--master_port") + 1] = str(free_port())
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("already holds the finished model of this recipe") == WORLD
    assert (out / "model.safetensors").read_bytes() == weights
