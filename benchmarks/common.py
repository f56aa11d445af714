"""What the benchmarks share: honest GPU timing and a one-line name of where they ran."""
import torch


def sync(device: str) -> None:
    """Wait for queued GPU work: a timing must cover the work, not just its kernel launches."""
    if device == "cuda":
        torch.cuda.synchronize()


def where(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
