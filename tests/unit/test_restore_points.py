"""The record of restore points (backup/points.py): written in turn, read back in order."""

from __future__ import annotations

import threading
from pathlib import Path

from exapg.backup import points
from exapg.backup.points import RestorePoint


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def test_no_file_is_no_point(tmp_path):
    assert points.load(tmp_path / "restore-points.json") == []


def test_points_come_back_oldest_first(tmp_path):
    path = tmp_path / "restore-points.json"
    first = RestorePoint("before-migration-42", 1764770000.5, "0/3000090", False)
    second = RestorePoint("backup-20261203-131749F", 1764770100.0, "0/5000028", True)
    points.add(path, first, write)
    points.add(path, second, write)
    assert points.load(path) == [first, second]


def test_concurrent_writers_lose_no_point(tmp_path):
    path = tmp_path / "restore-points.json"
    made = [RestorePoint(f"p{i}", float(i), f"0/{i:X}", False) for i in range(20)]
    threads = [threading.Thread(target=points.add, args=(path, p, write)) for p in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(points.load(path), key=lambda p: p.created) == made
