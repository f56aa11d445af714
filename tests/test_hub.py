"""The hub probe: an unreachable hub fails at once and turns the process offline."""
import os

import pytest

from retriever.data import load_train_groups
from retriever.resolve import resolve_model_path


def test_an_unreachable_hub_fails_a_hub_name_at_once_and_turns_the_process_offline(monkeypatch):
    import socket

    from retriever import hub

    tries = []

    def no_network(*args, **kwargs):
        tries.append(args)
        raise OSError("Name or service not known")
    for name in hub.OFFLINE_VARIABLES:  # set to "not offline", so that the test's end restores them
        monkeypatch.setenv(name, "")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    hub.probe_hub.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="'org/model': not a local model directory or file, and the "
                                                    "hub cannot be reached"):
            resolve_model_path("org/model")
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
        with pytest.raises(FileNotFoundError, match="--train_data 'org/groups'.*retriever.driver.mine"):
            load_train_groups("org/groups")
        assert len(tries) == 1  # asked once per process
    finally:
        hub.probe_hub.cache_clear()
