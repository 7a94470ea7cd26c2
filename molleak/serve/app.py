"""The served victim: a FastAPI app over one victim, with API keys, budgets, rate limits and a query log.

Protocol and charging: `molleak.serve.protocol`; keys and the query log: `molleak.serve.keys`;
output defences (noise, quantisation, per key or per deployment): `molleak.serve.defences`.
Every request is checked before any work (key, rate, body size, UTF-8, JSON, fields, batch size,
SMILES length) and every refusal is a 4xx with a JSON `{"error": ...}`; bad SMILES inside a good
request are per-item errors. The model's work (parse, compute, JSON) runs one request at a time in a
worker thread, off the event loop, so the server keeps answering `/health` and refusing bad requests
while it computes. Nothing is ever
unpickled: requests are JSON, the victim is opened with `molleak.victims.open.open_victim`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from molleak.chem import rdkit_quiet
from molleak.errors import FeaturizationError, MolleakError
from molleak.models.victim import QueryVictim
from molleak.serve.keys import Keys, KeyState
from molleak.serve.protocol import EMBED_PATH, HEALTH_PATH, EmbedRequest, Health

log = logging.getLogger(__name__)

#: what /health publishes of the checkpoint's provenance: the recipe (what the attacker's calibrated
#: score needs to train its shadow), without the victim's seed or its training set's identity
PUBLISHED = ("strategy", "config", "recipe_version", "plugin")


@dataclass(frozen=True)
class Limits:
    """What one request may ask: molecules, body bytes, characters per SMILES."""

    max_batch: int = 512
    max_body_bytes: int = 1 << 20
    max_smiles_length: int = 1000


def published_provenance(provenance: dict[str, Any]) -> dict[str, Any]:
    card = {k: provenance[k] for k in PUBLISHED if k in provenance}
    if isinstance(card.get("config"), dict):
        card["config"] = {k: v for k, v in card["config"].items() if k != "seed"}
    return card


class Refused(Exception):
    """A request refused with an HTTP status and one line."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.headers = status, error, headers or {}


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "bad Content-Length")
        if int(declared) > limit:
            raise Refused(413, f"request body of {declared} bytes, over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_request(body: bytes, limits: Limits) -> list[str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(400, f"the body is not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    try:
        smiles = EmbedRequest.model_validate(data).smiles
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        raise Refused(422, f'expected {{"smiles": [SMILES, ...]}}: {where}: {first["msg"]}') from None
    if len(smiles) > limits.max_batch:
        raise Refused(413, f"a batch of {len(smiles)} molecules, over the limit of {limits.max_batch}")
    for i, s in enumerate(smiles):
        if len(s) > limits.max_smiles_length:
            raise Refused(422, f"smiles[{i}] is {len(s)} characters long, over the limit of {limits.max_smiles_length}")
    return smiles


class Service:
    """The victim, the keys and the one lock under which the model computes and keys are charged."""

    def __init__(self, victim: QueryVictim, keys: Keys, limits: Limits):
        self.victim, self.keys, self.limits = victim, keys, limits
        self.lock = threading.Lock()
        self._worker: anyio.CapacityLimiter | None = None
        self.health = Health(name=victim.name, dim=victim.dim, model_sha256=victim.identity_sha256(),
                             provenance=published_provenance(victim.provenance), batch_size=victim.batch_size,
                             max_batch=limits.max_batch,
                             max_smiles_length=limits.max_smiles_length, max_body_bytes=limits.max_body_bytes,
                             defence=keys.defence.record(),
                             defence_per_key=any(s.spec.defence is not None for s in keys.states.values()))

    @property
    def worker(self) -> anyio.CapacityLimiter:
        """The one thread the model's work runs in (made inside the event loop, on first use)."""
        if self._worker is None:
            self._worker = anyio.CapacityLimiter(1)
        return self._worker

    def answer(self, state: KeyState, smiles: list[str]) -> Response:
        """Embed one validated request for one key (run in a worker thread)."""
        parsed, errors = [], []
        with rdkit_quiet():
            for i, s in enumerate(smiles):
                try:
                    parsed.append((i, self.victim.parse(s)))
                except FeaturizationError as exc:
                    errors.append({"index": i, "error": str(exc)})
        keys = list(dict.fromkeys(q.key for _, q in parsed))
        with self.lock:
            new = [k for k in keys if k not in state.seen]
            budget = state.spec.budget
            if budget is not None and state.used + len(new) > budget:
                raise Refused(402, f"key {state.name}: {len(new)} new molecules would exceed its budget of {budget} "
                                   f"({state.used} used)")
            before = self.victim.queries
            rows = self.victim.answer([q for _, q in parsed])
            state.record(len(smiles), self.victim.queries - before, len(new), keys)
            used = state.used
        # the defence (a pure function of the key, the canonical SMILES and the secret) after the
        # cache: the victim's raw rows stay cached, each key gets its own defended answer
        rows = state.defence.apply(rows, [q.key for _, q in parsed], state.name, self.keys.secret)
        embeddings: list[Any] = [None] * len(smiles)
        for (i, _), row in zip(parsed, rows.tolist(), strict=True):
            embeddings[i] = row
        body = {"embeddings": embeddings, "errors": errors, "charged": len(new), "used": used, "budget": budget,
                "defence": state.defence.record()}
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def build_app(victim: QueryVictim, keys: Keys, limits: Limits | None = None) -> FastAPI:
    """The FastAPI app serving `victim` to `keys`."""
    service = Service(victim, keys, limits or Limits())
    app = FastAPI(title="molleak served victim", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return _error(500, f"internal error ({type(exc).__name__})")

    @app.get(HEALTH_PATH)
    async def health() -> Response:
        return Response(service.health.model_dump_json(), media_type="application/json")

    @app.post(EMBED_PATH)
    async def embed(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        state = keys.find(token.strip() if scheme.lower() == "bearer" else None)
        try:
            if state is None:
                raise Refused(401, "missing or unknown API key (send Authorization: Bearer KEY)",
                              {"WWW-Authenticate": "Bearer"})
            if wait := state.retry_after():
                raise Refused(429, f"key {state.name}: over its rate limit of {state.spec.rate:g} requests/s; "
                                   f"retry in {wait} s", {"Retry-After": str(wait)})
            smiles = _parse_request(await _read_body(request, service.limits.max_body_bytes), service.limits)
            # one worker thread does all the model's work (parse, compute, JSON): threads sharing the
            # GIL would only slow each other down (BENCHMARKS.md, "Served victim over HTTP")
            return await anyio.to_thread.run_sync(service.answer, state, smiles, limiter=service.worker)
        except Refused as exc:
            return _error(exc.status, exc.error, exc.headers)
        except FeaturizationError as exc:  # a molecule this model's featuriser refuses
            return _error(422, str(exc))
        except MolleakError as exc:  # the model itself failed (e.g. non-finite embeddings)
            log.error("%s", exc)
            return _error(500, str(exc))

    return app


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run `app` on uvicorn in a daemon thread (port 0: a free one); yields its URL, stops on exit."""
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # log_config=None: uvicorn's default dictConfig closes every existing logging handler of the
    # process (the embedding program's, e.g. a test runner's capture), which breaks its logging after
    # the server stops; molleak's own logging configuration is left as it is
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the served victim did not start")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
