"""Errors of the SQL tools, mapped onto the shared exit codes."""

from __future__ import annotations

from nodus_cli.errors import InputError


class UnsupportedConstruct(InputError):
    """The target dialect cannot express a construct of the query (exit 2).

    The message names the construct, so that nothing is ever dropped silently.
    """
