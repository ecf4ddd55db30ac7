"""One password rule for management users, the one `exapg config validate` applies to the
stack's own secrets: weak passwords are refused on create, reset and change, with the
rule's own one-line reason."""

from __future__ import annotations

import pytest

from exapg.passwords import password_problem
from tests.api.fixtures import unique_name

pytestmark = pytest.mark.integration


def own_name() -> str:
    """A user name long and varied enough that only the name rule can refuse it."""
    return f"own.name-{unique_name('x')}.7"


def weak_passwords(username: str) -> list[str]:
    return [" " * 12, "a" * 12, "aaaaaaaaaaaaaaaaaaaaaaaa", "abcabcabcabc", username, username.upper()]


def assert_refused(answer, password: str, username: str) -> None:
    assert answer.status_code == 422, (password, answer.text)
    detail = answer.json()["detail"]
    assert detail == password_problem("password", password, (username,)), detail


def test_admin_cannot_create_a_user_with_a_weak_password(admin):
    name = own_name()
    for password in weak_passwords(name):
        answer = admin.post("/api/users", json={"username": name, "password": password})
        assert_refused(answer, password, name)
    assert admin.get(f"/api/users/{name}").status_code == 404


def test_weak_passwords_are_refused_on_reset_and_change(api_server, make_user, admin):
    account = make_user("viewer")
    for password in weak_passwords(account.username):
        reset = admin.post(f"/api/users/{account.username}/password", json={"password": password})
        assert_refused(reset, password, account.username)
        with api_server.client(account.token) as client:
            change = client.post("/api/auth/password", json={"current_password": account.password,
                                                             "new_password": password})
        assert_refused(change, password, account.username)
    assert api_server.login(account.username, account.password).status_code == 200


def test_a_strong_password_is_accepted(admin):
    name = own_name()
    answer = admin.post("/api/users", json={"username": name, "password": "Tr0ub4dor&3-horse"})
    assert answer.status_code == 201, answer.text
    assert admin.delete(f"/api/users/{name}").status_code == 204
