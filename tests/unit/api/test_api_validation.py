"""Bad input is 422 before anything reaches the stack: pydantic's list of problems for the
schema, one line for rules the schema cannot state (the password rule)."""

from __future__ import annotations

import pytest

from tests.unit.api.conftest import Api

STRONG = "Correct-Horse-9-Battery"


def problems(answer) -> list[tuple[tuple[str, ...], str]]:
    assert answer.status_code == 422, answer.text
    return [(tuple(str(p) for p in e["loc"]), e["type"]) for e in answer.json()["detail"]]


@pytest.mark.parametrize(("body", "expected"), [
    ({"username": "Bob", "password": STRONG}, [(("body", "username"), "string_pattern_mismatch")]),
    ({"username": "bob", "password": "short"}, [(("body", "password"), "string_too_short")]),
    ({"username": "bob1", "password": STRONG, "role": "root"}, [(("body", "role"), "enum")]),
    ({"username": "bob1", "password": STRONG, "admin": True}, [(("body", "admin"), "extra_forbidden")]),
    ({"password": STRONG}, [(("body", "username"), "missing")]),
    (None, [(("body",), "missing")]),
])
def test_user_create_schema_errors(api: Api, body, expected):
    answer = api.client.post("/api/users", json=body, headers=api.session("admin"))
    assert problems(answer) == expected


def test_every_problem_of_a_body_is_listed_at_once(api: Api):
    answer = api.client.post("/api/users", json={"username": "X", "password": "", "role": "god"},
                             headers=api.session("admin"))
    assert {loc for loc, _ in problems(answer)} == {("body", "username"), ("body", "password"), ("body", "role")}


def test_a_weak_password_is_one_line_and_never_reaches_the_database(api: Api, caplog):
    answer = api.client.post("/api/users", json={"username": "carol", "password": "abcdefghijkl"},
                             headers=api.session("admin"))
    assert answer.status_code == 422
    assert answer.json() == {"detail": "password: weak (mix lower case, upper case, digits and symbols, "
                                       "or use 20+ characters)"}
    # no attempt: nothing was written, or tried to be (the stack is down here)
    assert not [r for r in caplog.records if r.name == "exapg.api.services.audit"]


def test_a_user_update_needs_something_to_change(api: Api):
    answer = api.client.patch("/api/users/carol", json={}, headers=api.session("admin"))
    assert answer.status_code == 422
    assert "give role and/or enabled" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("method", "path", "loc"), [
    ("GET", "/api/users/A", ("path", "username")),
    ("GET", "/api/audit?limit=0", ("query", "limit")),
    ("GET", "/api/audit?limit=501", ("query", "limit")),
    ("GET", "/api/audit?action=DROP%20TABLE", ("query", "action")),
    ("GET", "/api/audit?offset=-1", ("query", "offset")),
    ("GET", "/api/dashboard/timeseries?minutes=61", ("query", "minutes")),
    ("GET", "/api/queries/top?limit=101", ("query", "limit")),
    ("POST", "/api/queries/coordinator/0/cancel", ("path", "pid")),
    ("POST", "/api/queries/coordinator/notanumber/cancel", ("path", "pid")),
    ("POST", "/api/queries/Coordinator/1/cancel", ("path", "node")),
])
def test_parameters_out_of_range_are_422(api: Api, method, path, loc):
    answer = api.client.request(method, path, headers=api.session("admin"))
    assert [p[0] for p in problems(answer)] == [loc]


def test_an_unknown_node_is_404_naming_the_nodes(api: Api):
    answer = api.client.post("/api/queries/nosuchnode/123/cancel", headers=api.session("admin"))
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no node named 'nosuchnode' (nodes: coordinator, standby)"


def test_authentication_comes_before_validation(api: Api):
    """A stranger learns nothing of the schema's rules."""
    answer = api.client.post("/api/users", json={"username": "X"})
    assert answer.status_code == 401


def test_login_body_is_validated(api: Api):
    answer = api.client.post("/api/auth/login", json={"username": "admin"})
    assert problems(answer) == [(("body", "password"), "missing")]
