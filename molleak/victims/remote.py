"""A served victim over HTTP (`molleak serve`), seen through the same `embed` as every victim.

The client learns the server's limits from `GET /health` and sends the molecules it has not cached
in batches of at most the server's `max_batch`; it retries connection errors and 5xx with
exponential backoff (a retried request is never charged twice: the server charges a key once per
molecule), waits out 429 as `Retry-After` says, and stops with one clear error on 401/402/403.
`queries` counts what the server charged. The API key is read from `MOLLEAK_API_KEY` only.
Protocol: `molleak.serve.protocol`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from molleak.chem import shorten
from molleak.errors import FeaturizationError, MolleakError, QueryBudgetExceeded
from molleak.models.victim import Query, QueryVictim
from molleak.serve.protocol import API_KEY_ENV, EMBED_PATH, HEALTH_PATH, Health

log = logging.getLogger(__name__)

#: longest single wait a 429's Retry-After may ask for, and the most waiting one request may do
MAX_RETRY_AFTER_S = 60.0
MAX_WAIT_S = 600.0


def check_url(url: str) -> str:
    """An http(s) URL with a host and no credentials or query string (a key there would be recorded
    in config.json and seen by `ps`: it belongs in MOLLEAK_API_KEY)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MolleakError(f"served victim {url!r}: expected http://host:port or https://host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise MolleakError(f"served victim {parts.scheme}://{parts.hostname}...: no credentials or query string in "
                           f"the URL; give the API key in the environment variable {API_KEY_ENV}")
    try:
        _ = parts.port
    except ValueError:
        raise MolleakError(f"served victim {url!r}: bad port") from None
    return url.rstrip("/")


class RemoteVictim(QueryVictim):
    """A victim behind `molleak serve`.

    Args:
        url: `http://host:port` (or https).
        api_key: the key (None: read from MOLLEAK_API_KEY; no key at all gets a clear 401 error).
        budget, cache: as for every victim (the client's own budget; the server enforces its own per key).
        batch_size: molecules per request (capped by the server's max_batch; None: the largest
            multiple of the server's forward batch within it).
        retries: attempts after a connection error or a 5xx, waiting backoff_s * 2**i between them.
        timeout_s: per request.
    """

    kind = "served victim"

    def __init__(self, url: str, *, api_key: str | None = None, budget: int | None = None, cache: bool = True,
                 batch_size: int | None = None, retries: int = 5, backoff_s: float = 0.2, timeout_s: float = 120.0,
                 name: str | None = None):
        import httpx

        self.url = check_url(url)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.retries, self.backoff_s = int(retries), float(backoff_s)
        self.health = self._health(name or self.url)
        super().__init__(name=name or self.health.name or self.url, provenance=self.health.provenance,
                         batch_size=self._request_size(batch_size), budget=budget, cache=cache)
        self._dim = self.health.dim
        self.server_used: int | None = None  # what the server says this key has spent
        self.server_budget: int | None = None

    def _health(self, label: str) -> Health:
        response = self._request("GET", HEALTH_PATH, label=label)
        try:
            return Health.model_validate(response.json())
        except ValueError as exc:
            raise MolleakError(f"served victim {label}: {HEALTH_PATH} is not a molleak server's answer "
                               f"({str(exc).splitlines()[0]})") from None

    def _request_size(self, wanted: int | None) -> int:
        """Molecules per request: `wanted` capped by the server's max_batch; by default the largest
        multiple of the server's forward batch that fits, so the server computes the same batches an
        in-process victim would (same numbers, to the last bit, on a server that had not cached them)."""
        cap, forward = self.health.max_batch, max(1, self.health.batch_size)
        if wanted is not None:
            return max(1, min(wanted, cap))
        return max(1, cap // forward * forward if cap >= forward else cap)

    def identity_sha256(self) -> str:
        return self.health.model_sha256

    def close(self) -> None:
        self._client.close()

    def parse(self, smiles: Any) -> Query:
        if isinstance(smiles, str) and len(smiles) > self.health.max_smiles_length:
            raise FeaturizationError(f"{self.label}: SMILES {shorten(smiles)} is over the server's bound of "
                                     f"{self.health.max_smiles_length} characters")
        return super().parse(smiles)

    def _request(self, method: str, path: str, *, label: str | None = None, **kwargs: Any):
        """One request, retried on connection errors and 5xx, waiting out 429; one error otherwise."""
        import httpx

        label = label or self.label
        attempt, waited = 0, 0.0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem, response = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 400:
                    return response
                problem = f"HTTP {response.status_code}: {_error_text(response)}"
                if response.status_code == 429:
                    wait = min(_retry_after(response), MAX_RETRY_AFTER_S)
                    if waited + wait > MAX_WAIT_S:
                        raise MolleakError(f"{label}: still rate-limited after {waited:.0f} s of waiting ({problem})")
                    log.info("%s: rate-limited; waiting %.1f s as Retry-After says", label, wait)
                    time.sleep(wait)
                    waited += wait
                    continue
                if response.status_code == 402:
                    raise QueryBudgetExceeded(f"{label}: the server refused: the API key's query budget is spent "
                                              f"({_error_text(response)})")
                if response.status_code in (401, 403):
                    hint = "" if "Authorization" in self._client.headers else f"; set {API_KEY_ENV}"
                    raise MolleakError(f"{label}: the server refused the API key (HTTP {response.status_code}: "
                                       f"{_error_text(response)}){hint}")
                if response.status_code < 500:
                    raise MolleakError(f"{label}: the server refused the request ({problem})")
            if attempt >= self.retries:
                raise MolleakError(f"{label}: no answer after {attempt + 1} attempts ({problem})")
            delay = self.backoff_s * 2**attempt
            log.warning("%s: %s; retrying in %.1f s", label, problem, delay)
            time.sleep(delay)
            attempt += 1

    def _compute(self, items: list[Query]) -> tuple[Any, int]:
        # the SMILES as first asked (not the canonical key): the server parses the same string the
        # in-process victim would, so the answers are the same
        response = self._request("POST", EMBED_PATH, json={"smiles": [q.smiles for q in items]})
        try:
            body = response.json()
            rows, errors, charged = body["embeddings"], body["errors"], int(body["charged"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MolleakError(f"{self.label}: malformed answer from the server ({exc})") from None
        if errors:
            first = errors[0]
            raise FeaturizationError(f"{self.label}: the server refused {len(errors)} molecules, e.g. "
                                     f"{first.get('error', first)}")
        self.server_used, self.server_budget = body.get("used"), body.get("budget")
        try:
            return np.asarray(rows, dtype=np.float32), charged
        except (TypeError, ValueError) as exc:
            raise MolleakError(f"{self.label}: malformed embeddings from the server ({exc})") from None


def _error_text(response: Any) -> str:
    try:
        return str(response.json().get("error", response.text[:200]))
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason_phrase


def _retry_after(response: Any) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "1")), 0.0)
    except ValueError:
        return 1.0
