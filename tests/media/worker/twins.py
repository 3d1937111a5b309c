"""Fixtures that give a test each twin of a hot-path object: the pure-Python one and the compiled one."""

from __future__ import annotations

import importlib
from typing import Any

import pytest


def compiled_twin(module: str) -> Any:
    """The compiled module ``kolabmeet.media.worker.<module>``, or None when it was not built."""
    try:
        return importlib.import_module(f"kolabmeet.media.worker.{module}")
    except ImportError:  # built by pip install . where a C compiler is found
        return None


def twin_fixture(python_twin: Any, module: str, name: str) -> Any:
    """A fixture whose value is ``python_twin``, then ``<module>.<name>`` (skipped when not built)."""

    @pytest.fixture(params=["python", "c"])
    def twin(request: pytest.FixtureRequest) -> Any:
        if request.param == "python":
            return python_twin
        compiled = compiled_twin(module)
        if compiled is None:
            pytest.skip("the C twin was not built")
        return getattr(compiled, name)

    return twin
