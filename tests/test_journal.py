"""The journal: one row per invocation, arguments once and masked, a table that fits."""

from __future__ import annotations

import pytest

from nodus_cli.masking import is_secret_name, mask_args


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db.password", True),
        ("DB_PASSWD", True),
        ("apiKey", True),
        ("api_key", True),
        ("aws.secret_access_key", True),
        ("github-token", True),
        ("auth", True),
        ("private_key", True),
        ("credentials", True),
        ("dbpassword", True),
        ("--passphrase", True),
        ("--passphrase-file", False),
        ("--keyring", False),
        ("key_id", False),
        ("monkey", False),
        ("host", False),
        ("pool.max", False),
    ],
)
def test_which_names_look_secret(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_set_with_equals_is_masked_like_set_with_a_space() -> None:
    """Issue 23.5: ``--set=db.password=x`` reached the journal in clear."""
    assert mask_args(["--set=db.password=swordfish"]) == ["--set=db.password=***"]
    assert mask_args(["--set", "db.password=swordfish"]) == ["--set", "db.password=***"]
    assert mask_args(["--set=pool.max=5"]) == ["--set=pool.max=5"]
