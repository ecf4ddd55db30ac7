"""redact_sql against the ways a secret can be written, and against quotes meant to end a
literal early (in comments, identifiers, escapes, dollar quotes, cut-off text)."""

from __future__ import annotations

import pytest

from exapg.api.services.redact import redact_sql

S = "hunter2-Secret"

LEAKS = [
    f"CREATE ROLE x LOGIN PASSWORD '{S}'",
    f"alter role x with encrypted password '{S}' valid until 'infinity'",
    f"ALTER USER x PASSWORD E'it\\'s-{S}'",
    f"ALTER USER x PASSWORD E'\\\\' || '{S}'",
    f"ALTER ROLE x PASSWORD $${S}$$",
    f"ALTER ROLE x PASSWORD $pw${S}$pw$",
    f"CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '{S}')",
    f"CREATE SUBSCRIPTION s CONNECTION 'host=h password={S}' PUBLICATION p",
    f"SELECT dblink_connect('c', 'host=x password={S}')",
    f"SELECT * FROM dblink('dbname=x user=y password={S}', 'select 1') AS t(a int)",
    f"SELECT * FROM public.dblink_exec('c', 'ALTER ROLE y PASSWORD ''{S}''')",
    f"UPDATE app_users SET password = '{S}' WHERE id = 1",
    f"UPDATE app_users SET \"api_token\" = '{S}'",
    f"SELECT pgp_sym_encrypt(data, '{S}') FROM t",
    f"SELECT crypt('{S}', gen_salt('bf'))",
    f"SELECT set_config('app.password', '{S}', false)",
    f"SELECT 1 WHERE 'postgresql://app:{S}@db/x' <> ''",
    f"SELECT 1; ALTER ROLE x PASSWORD '{S}'",
    f"/* it's */ ALTER ROLE x PASSWORD '{S}'",
    f"/* /* nested ' */ */ ALTER ROLE x PASSWORD '{S}'",
    f"-- it's\nALTER ROLE x PASSWORD '{S}'",
    f"ALTER ROLE \"it's\" PASSWORD '{S}'",
    f"CREATE ROLE x PASSWORD '{S}",  # cut off by track_activity_query_size
    f"DO $$BEGIN EXECUTE 'ALTER ROLE x PASSWORD ''{S}'''; END$$",
    f"COPY t FROM PROGRAM 'curl -u app:{S} http://h/x'",
    f"SET my.secret = '{S}'",
    f"ALTER ROLE x PASSWORD 'ab\\'{S}'",  # standard_conforming_strings off: one literal
]


@pytest.mark.parametrize("text", LEAKS)
def test_the_secret_is_gone(text):
    redacted = redact_sql(text)
    assert S not in redacted and S[:6] not in redacted, redacted
    assert "'***'" in redacted


@pytest.mark.parametrize("text", [
    "SELECT 'hello', 'O''Brien' FROM t WHERE name = 'x'",
    "SELECT $1, $2 FROM t WHERE a = $3",
    "WITH x AS (SELECT 'a' AS v) SELECT v FROM x",
    "SELECT \"password\" FROM t WHERE id = 1",
    "",
])
def test_other_queries_are_left_as_they_are(text):
    assert redact_sql(text) == text


def test_roles_below_admin_see_no_literal_at_all():
    text = "INSERT INTO creds (name, pass) VALUES ('bob', 'hunter2'), ('eve', E'it\\'s')"
    assert redact_sql(text) == text  # nothing there says secret: an admin sees it
    assert redact_sql(text, every_literal=True) == (
        "INSERT INTO creds (name, pass) VALUES ('***', '***'), ('***', '***')")


def test_a_statement_keeps_its_shape():
    assert redact_sql(f"CREATE ROLE x LOGIN PASSWORD '{S}'") == "CREATE ROLE x LOGIN PASSWORD '***'"
    assert redact_sql(None) is None
