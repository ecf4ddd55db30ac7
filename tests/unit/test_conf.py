from pathlib import Path

from exapg.postgres import conf
from exapg.postgres.conf import GiB, MiB, Resources


def mb(value: str) -> int:
    assert value.endswith("MB")
    return int(value[:-2]) * MiB


def test_tuning_scales_with_memory_and_cores():
    small = conf.analytics_tuning(Resources(2 * GiB, 2))
    big = conf.analytics_tuning(Resources(64 * GiB, 16))
    assert mb(small["shared_buffers"]) == 512 * MiB
    assert mb(big["shared_buffers"]) == 16 * GiB
    assert mb(small["effective_cache_size"]) == int(1.5 * GiB)
    assert mb(small["work_mem"]) < mb(big["work_mem"])
    assert mb(big["maintenance_work_mem"]) == 2 * GiB  # clamped
    assert mb(conf.analytics_tuning(Resources(24 * GiB, 2))["work_mem"]) == 128 * MiB  # capped
    assert small["max_parallel_workers"] == "2" and big["max_parallel_workers"] == "16"
    assert int(big["max_worker_processes"]) >= int(big["max_parallel_workers"])
    assert small["jit"] == "on"
    # compiled from a cost a full scan of a large table reaches; optimized only well above it
    assert 100_000 <= float(small["jit_above_cost"]) < float(small["jit_optimize_above_cost"])
    assert small["jit_inline_above_cost"] == small["jit_optimize_above_cost"]
    assert float(small["parallel_tuple_cost"]) < 0.1 and float(small["parallel_setup_cost"]) < 1000
    assert small["max_parallel_workers_per_gather"] == "1" and big["max_parallel_workers_per_gather"] == "8"


def test_tuning_has_floors_on_tiny_machines():
    tiny = conf.analytics_tuning(Resources(256 * MiB, 1))
    assert mb(tiny["shared_buffers"]) == 128 * MiB
    assert mb(tiny["work_mem"]) >= 4 * MiB
    assert tiny["max_parallel_workers_per_gather"] == "1"


def test_render_quotes_values():
    text = conf.render({"a": "it's", "b": "x"}, "hdr")
    assert "a = 'it''s'" in text and "b = 'x'" in text


def test_hba_is_scram_only():
    hba = conf.render_hba("replicator")
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)
    assert "trust" not in hba and "peer" not in hba


def test_include_added_once(tmp_path: Path):
    path = tmp_path / "postgresql.conf"
    path.write_text("port = 5432\n")
    assert conf.ensure_include(path) is True
    assert conf.ensure_include(path) is False
    assert path.read_text().count(conf.INCLUDE_LINE) == 1


def test_machine_resources_are_positive():
    res = conf.machine_resources()
    assert res.memory > 64 * MiB and res.cpus >= 1
