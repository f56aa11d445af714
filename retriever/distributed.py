"""Several processes under torchrun: cross-device negatives in training, and slices of a corpus in encoding.

Training: under `torchrun --nproc_per_node N`, each process holds its own Q queries and
Q×P passages. Gathering them lets each query score against all N×Q×P passages,
so the negatives grow with the number of devices at no extra forward cost.

Encoding (encode, evaluate, mine --encoder): each rank takes its own contiguous slice of the
texts, from its rank and the world size alone (`my_slice`), and rank 0 gathers the slices back
in order (`gather_rows`): it then holds exactly what one process would have encoded.
"""
import os
from contextlib import contextmanager
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist


def rank() -> int:
    """This process's rank: from the process group, or torchrun's RANK before one exists (0 alone)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """Concatenate `local` from every rank (rank order), keeping this rank's autograd graph.

    `all_gather` returns copies without gradient, so this rank's slot is put back
    as the original tensor: the loss then back-propagates into the local encoder
    only. Each rank computes the same global loss from its own slice, so summing
    the ranks' gradients gives the full-batch gradient; DDP averages them instead,
    which is why the caller multiplies the loss by the world size.
    """
    n = world_size()
    if n == 1:
        return local
    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(n)]
    dist.all_gather(sizes, torch.tensor([local.size(0)], device=local.device))
    if len({int(s) for s in sizes}) != 1:
        raise ValueError(f"--negatives_cross_device needs the same batch size on every rank; "
                         f"got {[int(s) for s in sizes]} (set --dataloader_drop_last)")
    parts = [torch.empty_like(local) for _ in range(n)]
    dist.all_gather(parts, local.detach().contiguous())
    parts[dist.get_rank()] = local
    return torch.cat(parts)  # (n * batch, dim)


def gather(local: torch.Tensor) -> torch.Tensor:
    """Concatenate `local` from every rank (rank order), without gradient (teacher scores)."""
    n = world_size()
    if n == 1:
        return local
    parts = [torch.empty_like(local) for _ in range(n)]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)


@contextmanager
def inference_group():
    """Under torchrun (WORLD_SIZE > 1): join the process group for the block (NCCL with this rank's GPU, else gloo)
    and leave it together at the end. Alone, nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        yield
        return
    # torch.distributed.fsdp binds the default group as a default argument when it is imported (ShardedGradScaler's
    # `process_group=dist.group.WORLD`), and transformers imports it lazily, inside the block. That reference would
    # keep the group, and gloo's worker threads, alive past destroy_process_group; a thread still freeing a finished
    # collective when Python shuts down then aborts the process ("terminate called without an active exception").
    import torch.distributed.fsdp  # noqa: F401  (imported before the group exists, it binds None)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" is this rank's own GPU from here on
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
        dist.barrier()  # every rank is done before the group goes (a rank leaving early can abort the others)
    finally:
        dist.destroy_process_group()


def my_slice(n: int) -> range:
    """This rank's contiguous share of n items (all of them when alone); together the ranks cover each item once."""
    bounds = np.linspace(0, n, world_size() + 1).round().astype(int)
    return range(int(bounds[rank()]), int(bounds[rank() + 1]))


def gather_rows(local: np.ndarray) -> Optional[np.ndarray]:
    """Every rank's rows (n_i, dim), concatenated in rank order on rank 0; None on the other ranks. Alone: `local`."""
    n = world_size()
    if n == 1:
        return local
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32)).to(device)
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(n)]
    dist.all_gather(sizes, torch.tensor([tensor.size(0)], device=device))
    sizes = [int(size) for size in sizes]
    padded = torch.zeros(max(sizes), tensor.size(1), device=device)  # gather needs one shape on every rank
    padded[: tensor.size(0)] = tensor
    parts = [torch.empty_like(padded) for _ in range(n)] if rank() == 0 else None
    dist.gather(padded, parts, dst=0)
    if rank() != 0:
        return None
    return torch.cat([part[:size] for part, size in zip(parts, sizes)]).cpu().numpy()


def broadcast(value):
    """Rank 0's `value` on every rank (any picklable object). Alone: `value`."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
