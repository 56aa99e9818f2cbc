"""What of a stored record may be copied into what ``report``, ``compare`` and ``pages`` write: never a credential.

Why here, on the way out, when the recorder no longer records them: folders written before the allowlist hold every
``TF_``-prefixed variable, a Terraform token (``TF_TOKEN_<host>``) or secret (``TF_VAR_db_password``) included, in
``host.json``'s ``env`` and in the run records' ``thread_env`` (and a config's ``env``). Those folders are not
rewritten (they are the user's evidence), but nothing this suite writes from them may carry such a value on: a
``results.json`` or ``results.csv`` is what people publish. A variable whose name says it holds a credential
(:func:`tf_cnn_benchmarks.hostfacts.is_secret`: token, secret, password, key, credential...) is dropped, with its
value, from every environment mapping, wherever it is nested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tf_cnn_benchmarks import hostfacts

# The keys under which records and host records keep environment variables (name -> value).
ENV_KEYS = frozenset({"env", "thread_env", "environment"})


def public_env(env: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``env`` without the variables whose names say they hold a credential (None stays None)."""
    if env is None:
        return None
    return {k: v for k, v in env.items() if not hostfacts.is_secret(str(k))}


def public(data: Any) -> Any:
    """A copy of a record's or host record's JSON form in which every environment mapping (under a key of
    :data:`ENV_KEYS`, at any depth) has lost its credentials; everything else is kept as it is."""
    if isinstance(data, Mapping):
        return {
            k: public_env({str(n): public(v) for n, v in value.items()})
            if k in ENV_KEYS and isinstance(value, Mapping)
            else public(value)
            for k, value in data.items()
        }
    if isinstance(data, list):
        return [public(v) for v in data]
    return data
