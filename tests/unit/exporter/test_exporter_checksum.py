"""When a standby's table checksum may be compared with the primary's."""

from __future__ import annotations

from exapg.exporter.checksum import Checksum, table_identifier, verdict


def test_agreeing_standby_between_two_equal_primary_reads():
    assert verdict(Checksum(100, 3, "abc"), Checksum(120, 3, "abc"), Checksum(130, 3, "abc")) is True


def test_differing_standby_while_the_primary_held_still():
    assert verdict(Checksum(100, 3, "abc"), Checksum(120, 3, "abd"), Checksum(130, 3, "abc")) is False
    assert verdict(Checksum(100, 3, "abc"), Checksum(120, 2, "abc"), Checksum(130, 3, "abc")) is False


def test_undecided_when_the_table_changed_or_replay_was_short():
    assert verdict(Checksum(100, 3, "abc"), Checksum(120, 3, "xyz"), Checksum(130, 4, "xyz")) is None
    assert verdict(Checksum(100, 3, "abc"), Checksum(90, 3, "zzz"), Checksum(130, 3, "abc")) is None


def test_table_names_are_identifiers_not_sql():
    assert table_identifier("public.t").as_string(None) == '"public"."t"'
    assert table_identifier('x"; DROP TABLE y; --').as_string(None) == '"x""; DROP TABLE y; --"'
