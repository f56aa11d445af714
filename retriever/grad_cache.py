"""GradCache: a large contrastive batch in small memory (Gao et al., 2021).

The contrastive loss couples every query with every passage, so the batch cannot
simply be split into micro-batches. But the loss depends on the encoder only
through the embeddings, which are small. So, in three passes:

1. embed all queries and passages chunk by chunk WITHOUT a graph (cheap memory);
2. compute the loss on those embeddings and its gradient with respect to each
   embedding (the "cache");
3. re-embed each chunk WITH a graph and back-propagate the cached gradient into
   the encoder, one chunk at a time (chain rule: d loss/d theta = sum over
   embeddings of d loss/d e · d e/d theta).

Peak activation memory is one chunk's instead of the whole batch's; the loss
and gradients equal the full-batch ones. Pass 3 replays the random state of
pass 1 so dropout masks match.
"""
from contextlib import contextmanager, nullcontext
from typing import Callable

import torch


def split_batch(batch: dict, chunk_size: int) -> list[dict]:
    """Split a tokenised batch into row chunks of at most chunk_size."""
    n = batch["input_ids"].size(0)
    return [{k: v[i:i + chunk_size] for k, v in batch.items()} for i in range(0, n, chunk_size)]


class RandomState:
    """The CPU (and CUDA, when in use) random state at construction, to replay later."""

    def __init__(self):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    @contextmanager
    def replay(self):
        devices = list(range(len(self.cuda))) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def grad_cache_step(
    embed_query: Callable[[dict], torch.Tensor],
    embed_passage: Callable[[dict], torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    query: dict,
    passage: dict,
    q_chunk_size: int,
    p_chunk_size: int,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    no_sync: Callable[[], object] = nullcontext,
) -> torch.Tensor:
    """One GradCache forward/backward over (query, passage); returns the detached loss.

    `backward` runs a backward pass (e.g. `accelerator.backward`, which applies
    fp16 loss scaling); `no_sync` is a context that stops DDP from all-reducing
    gradients, used for every chunk but the last.
    """
    q_chunks = split_batch(query, q_chunk_size)
    chunks = [(embed_query, c) for c in q_chunks] + [(embed_passage, c) for c in split_batch(passage, p_chunk_size)]

    # 1. embeddings without a graph, remembering each chunk's random state
    states, reps = [], []
    with torch.no_grad():
        for embed, chunk in chunks:
            states.append(RandomState())
            reps.append(embed(chunk))
    n_q = len(q_chunks)

    # 2. loss on the embeddings; its gradient with respect to each embedding
    leaves = [r.detach().requires_grad_() for r in reps]
    loss = loss_fn(torch.cat(leaves[:n_q]), torch.cat(leaves[n_q:]))
    grads = torch.autograd.grad(loss, leaves)

    # 3. re-embed with a graph; push each chunk's cached gradient into the encoder
    for i, ((embed, chunk), state, grad) in enumerate(zip(chunks, states, grads)):
        last = i == len(chunks) - 1
        with state.replay(), (nullcontext() if last else no_sync()):
            rep = embed(chunk)
            # d(rep · grad)/d theta = grad^T d rep/d theta: the chunk's share of d loss/d theta
            backward(torch.sum(rep.float() * grad.float()))
    return loss.detach()
