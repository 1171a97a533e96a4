from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from chatcore.errors import InvalidRequest, Unauthorized
from chatcore.server.auth import TokenAuthority

SECRET = "s" * 32


def test_issue_and_verify() -> None:
    authority = TokenAuthority(SECRET)
    assert authority.verify(authority.issue("alice")) == "alice"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, "x" * 32, algorithm="HS256"),
        jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, "", algorithm="none"),
        jwt.encode({"sub": "a"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),  # no sub
        jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, SECRET * 2, algorithm="HS512"),
        "garbage",
    ],
)
def test_refused_tokens(token: str) -> None:
    with pytest.raises(Unauthorized):
        TokenAuthority(SECRET).verify(token)


def test_expired_token() -> None:
    authority = TokenAuthority(SECRET, leeway_s=0)
    with pytest.raises(Unauthorized, match="expired"):
        authority.verify(authority.issue("a", ttl_s=-1))


def test_short_secret_refused() -> None:
    with pytest.raises(InvalidRequest):
        TokenAuthority("short")


def test_dev_key_is_kept_in_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHATCORE_SECRET", raising=False)
    first = TokenAuthority.from_environment(tmp_path, dev=True)
    token = first.issue("alice")
    again = TokenAuthority.from_environment(tmp_path, dev=True)
    assert again.verify(token) == "alice"
    mode = os.stat(tmp_path / "secret.key").st_mode
    assert stat.S_IMODE(mode) == 0o600
    with pytest.raises(InvalidRequest):
        TokenAuthority.from_environment(tmp_path, dev=False)
    monkeypatch.setenv("CHATCORE_SECRET", SECRET)
    with pytest.raises(Unauthorized):
        TokenAuthority.from_environment(tmp_path, dev=True).verify(token)


def test_identify_says_how_long_the_token_stays_valid() -> None:
    authority = TokenAuthority(SECRET, leeway_s=5)
    issued = int(time.time())
    token = authority.issue("alice", ttl_s=60, now=issued)
    identity = authority.identify(token, now=issued + 10)
    assert identity.user == "alice" and identity.valid_for_s == 55


def test_revoke_refuses_the_users_tokens_issued_until_then() -> None:
    authority = TokenAuthority(SECRET)
    now = time.time()
    old, other = authority.issue("alice", now=now - 10), authority.issue("bob", now=now - 10)
    authority.revoke("alice", now=now - 5)
    with pytest.raises(Unauthorized, match="revoked"):
        authority.verify(old)
    assert authority.verify(other) == "bob"
    assert authority.verify(authority.issue("alice", now=now)) == "alice"
