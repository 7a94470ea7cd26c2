"""The served victim's HTTP protocol, shared by the server (`molleak.serve.app`) and the client
(`molleak.victims.remote`). No web framework here: the client imports this module.

- `GET /health` (no key): `Health` — the model's name, width and identity, its published recipe,
  and the server's limits (batch, body and SMILES sizes), which the client follows.
- `POST /v1/embed` with `Authorization: Bearer KEY` and a JSON body `{"smiles": [...]}`:
  `{"embeddings": [[...] or null], "errors": [{"index": i, "error": "..."}], "charged": n,
  "used": n, "budget": n or null, "defence": {...}}`; one row per input, null where the SMILES is bad (its error is
  listed). Errors: 400 (body not UTF-8 / not JSON), 401 (no or unknown key), 402 (the key's budget
  is spent), 413 (body or batch too large), 422 (wrong fields, a SMILES over the length bound),
  429 (rate limit; `Retry-After` in seconds); every error is `{"error": "..."}`.
- Output defences (`molleak.serve.defences`): `defence` is the settings applied to this key's
  answers ({} for none); `/health` shows the deployment's and whether some keys have their own.

Charging: a key pays once per molecule (canonical SMILES) the server computed *for that key*; a
molecule the key was already answered costs nothing again, as in process (`QueryVictim`: an attacker
keeps the answers it already has). So a retried request is never charged twice, and `charged` is
the number the client adds to its `queries`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HEALTH_PATH = "/health"
EMBED_PATH = "/v1/embed"
#: where the client reads its API key (never from the command line, where `ps` and shell history see it)
API_KEY_ENV = "MOLLEAK_API_KEY"
CHARGING = "once per molecule newly computed for the key (canonical SMILES)"


class Health(BaseModel):
    """`GET /health`."""

    model_config = ConfigDict(extra="ignore")

    status: str = "ok"
    name: str
    dim: int | None
    model_sha256: str
    provenance: dict = Field(default_factory=dict)
    batch_size: int = 64  # molecules per forward pass: requests of a multiple of it compute as in process
    max_batch: int
    max_smiles_length: int
    max_body_bytes: int
    charging: str = CHARGING
    defence: dict = Field(default_factory=dict)  # the deployment's output defence ({} for none)
    defence_per_key: bool = False  # some keys have a defence of their own (shown to them in each answer)


class EmbedRequest(BaseModel):
    """`POST /v1/embed` body."""

    model_config = ConfigDict(extra="forbid", strict=True)

    smiles: list[str]

