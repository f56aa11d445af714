"""Every driver's --help opens with one line saying what it does, and every flag of ours has help text."""
import dataclasses
import importlib
from pathlib import Path

import pytest

DRIVERS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "retriever" / "driver").glob("*.py")
                 if p.stem != "__init__")


def test_every_driver_is_checked():
    assert {"train", "encode", "search", "evaluate", "query", "mine"} <= set(DRIVERS)


@pytest.mark.parametrize("name", DRIVERS)
def test_help_opens_with_what_the_driver_does_and_every_flag_of_ours_has_help(name, monkeypatch, capsys):
    module = importlib.import_module(f"retriever.driver.{name}")
    built = []

    def recording_make_parser(dataclass_types, doc):
        built.append((dataclass_types, make_parser(dataclass_types, doc)))
        return built[-1][1]
    make_parser = module.make_parser
    monkeypatch.setattr(module, "make_parser", recording_make_parser)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line == module.__doc__.strip().splitlines()[0] and first_line.endswith(".")
    types, parser = built[0]
    types = types if isinstance(types, tuple) else (types,)
    ours = {f.name for t in types for klass in t.__mro__ if klass.__module__.startswith("retriever")
            for f in dataclasses.fields(klass) if f.name in vars(klass).get("__annotations__", {})}
    assert ours
    for action in parser._actions:
        if action.dest in ours:
            assert action.help and action.help.strip(), f"--{action.dest} has no help text"
