"""Notify's webhook client: httpcore asks which async library runs on every lock and event it makes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest
from httpcore._synchronization import current_async_library


class _Lookups(MetaPathFinder):
    """Records every module the import system has to search for (a module already imported is not searched)."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.searched.append(fullname)
        return None


async def test_asking_the_async_library_searches_for_no_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # without sniffio installed, each of these calls failed to import it: a search of sys.path on disk, a
    # quarter of notify's CPU when it delivered webhooks
    assert current_async_library() == "asyncio"
    lookups = _Lookups()
    monkeypatch.setattr(sys, "meta_path", [lookups, *sys.meta_path])
    for _ in range(100):
        assert current_async_library() == "asyncio"
    assert lookups.searched == []
