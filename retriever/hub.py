"""Is the Hugging Face hub reachable? Asked once per process, in well under a second.

Offline, `from_pretrained` and `load_dataset` retry for a minute or more before they
fail. A hub name is therefore tried only after one quick connection to the hub's host;
when that fails, HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are set for the rest of the process
and the caller fails at once with what to do instead.
"""
import functools
import os
import socket
from urllib.parse import urlparse

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_by_setting() -> bool:
    return any(os.environ.get(name, "0").lower() not in ("", "0", "false", "no") for name in OFFLINE_VARIABLES)


def hub_reachable() -> bool:
    """False when the user said offline, or when the hub's host cannot be reached (one try)."""
    return not offline_by_setting() and probe_hub()


@functools.lru_cache(maxsize=1)
def probe_hub(timeout: float = 3.0) -> bool:
    """One quick connection to the hub's host, once per process; on failure the rest of the
    process runs offline (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # through a proxy: let the hub client try
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
        return False


def require_hub(name: str, what: str, flag: str, offline_route: str) -> None:
    """Raise a one-line error naming the flag and the offline route when `name` (a hub name)
    cannot be fetched."""
    said_offline = offline_by_setting()
    if not hub_reachable():
        why = "offline (HF_HUB_OFFLINE is set)" if said_offline else "the hub cannot be reached"
        raise FileNotFoundError(f"{flag} '{name}': not a local {what}, and {why}. {offline_route}")
