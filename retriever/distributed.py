"""Cross-device negatives: every rank sees every rank's embeddings.

Under `torchrun --nproc_per_node N`, each process holds its own Q queries and
Q×P passages. Gathering them lets each query score against all N×Q×P passages,
so the negatives grow with the number of devices at no extra forward cost.
"""
import os

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
