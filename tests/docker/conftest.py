from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker.scratch import Scratch, scratch_dir, start


@pytest.fixture(scope="module")
def scratch_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    server = start(scratch_dir(tmp_path_factory) / "server")
    yield server
    server.stop()
