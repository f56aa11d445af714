"""Cross-device negatives, checked with 2 CPU processes on the gloo backend."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


def test_evaluate_and_encode_under_torchrun_equal_one_process(tiny_model_dir, tiny_beir, tmp_path):
    """Two gloo processes each encode their own slice (the corpus's and the queries'); rank 0 writes what one process
    writes: the same embeddings, ranking, scores, metrics and index. A slice dropped or encoded twice would change
    the embeddings' rows."""
    from retriever.driver import encode, evaluate
    from retriever.searcher import load_embeddings

    alone, = evaluate.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir),
                            "--output_dir", str(tmp_path / "alone")])
    encode.main(["--model_name_or_path", tiny_model_dir, "--data_dir", str(tiny_beir),
                 "--output_file", str(tmp_path / "alone" / "encoded.npz")])
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def torchrun(driver, *flags):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD), "--master_port",
               str(free_port()), "-m", f"retriever.driver.{driver}", "--model_name_or_path", tiny_model_dir,
               "--data_dir", str(tiny_beir), *flags]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr

    log = torchrun("evaluate", "--output_dir", str(tmp_path / "two"))
    for rank, (start, stop) in enumerate([(0, 14), (14, 28)]):  # 28 passages, 14 queries: halves
        assert f"rank {rank} of 2: passage texts {start} to {stop} of 28" in log
        assert f"rank {rank} of 2: query texts {start // 2} to {stop // 2} of 14" in log
    for kind in ("corpus", "queries"):
        one, ids_one, _ = load_embeddings(tmp_path / "alone" / "emb" / f"{kind}.npz")
        two, ids_two, _ = load_embeddings(tmp_path / "two" / "emb" / f"{kind}.npz")
        assert ids_two == ids_one
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    run_one, run_two = ([line.split() for line in (tmp_path / d / "run.trec").read_text().splitlines()]
                        for d in ("alone", "two"))
    assert [r[:4] for r in run_two] == [r[:4] for r in run_one]  # the same ranking, query by query
    np.testing.assert_allclose([float(r[4]) for r in run_two], [float(r[4]) for r in run_one], atol=1e-5)
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert all(two[m] == pytest.approx(alone[m], abs=1e-9) for m in ("MRR@10", "nDCG@10", "Recall@100"))
    assert (tmp_path / "two" / "index" / "index.faiss").is_file()
    torchrun("encode", "--output_file", str(tmp_path / "two" / "encoded.npz"))
    one, ids_one, meta_one = load_embeddings(tmp_path / "alone" / "encoded.npz")
    two, ids_two, meta_two = load_embeddings(tmp_path / "two" / "encoded.npz")
    assert ids_two == ids_one and meta_two == meta_one
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from /proc")
def test_leaving_the_inference_group_stops_gloo_threads_even_when_fsdp_is_first_imported_inside(tmp_path):
    """transformers imports torch.distributed.fsdp lazily, inside the group, and that import binds the default group
    (ShardedGradScaler's default argument). Were the group kept alive past destroy_process_group, gloo's worker
    threads would still run at shutdown, where one still freeing a finished collective aborts the process: a driver
    under torchrun then failed about one run in 30 on a loaded machine, after writing its outputs."""
    script = tmp_path / "leave.py"
    script.write_text(
        "import json, os\n"
        "import numpy as np\n"
        "from retriever.distributed import gather_rows, inference_group\n"
        "with inference_group():\n"
        "    import torch.distributed.fsdp\n"
        "    gather_rows(np.ones((2, 3), dtype=np.float32))\n"
        "names = []\n"
        "for t in os.listdir('/proc/self/task'):\n"
        "    try:\n"
        "        names.append(open(f'/proc/self/task/{t}/comm').read().strip())\n"
        "    except OSError:  # a thread that ended meanwhile\n"
        "        pass\n"
        "with open(f\"threads-{os.environ['RANK']}.json\", 'w') as f:\n"
        "    json.dump(sorted(n for n in names if 'gloo' in n), f)\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD), "--master_port",
           str(free_port()), str(script)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in range(WORLD):  # each rank's gloo threads still running after the block
        assert json.loads((tmp_path / f"threads-{rank}.json").read_text()) == [], f"rank {rank}"
