"""The served victim: a real uvicorn server on 127.0.0.1 (no mocks), its client, keys, budgets,
rate limits, bad requests, the query log, and an extraction over HTTP equal to the one in process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from molleak.errors import FeaturizationError, MolleakError, QueryBudgetExceeded
from molleak.models.base import build_encoder, load_encoders
from molleak.models.checkpoint import save_checkpoint
from molleak.models.victim import Victim
from molleak.serve.app import Limits, build_app, serve_in_thread
from molleak.serve.keys import Keys, KeysFile, key_sha256
from molleak.victims.remote import RemoteVictim

KEYS = {"alice": "alice-secret", "small": "small-secret", "slow": "slow-secret"}
SPECS = {"alice": {}, "small": {"budget": 5}, "slow": {"rate": 2.0, "burst": 1}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real (untrained) 2 x 32 GIN saved as a molleak checkpoint."""
    load_encoders()
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("served") / "gin.pt"
    save_checkpoint(out, build_encoder("gin", {"num_layers": 2, "emb_dim": 32}), {"strategy": "attrmask", "seed": 7})
    return out


@pytest.fixture()
def serve(tmp_path, checkpoint, one_torch_thread):
    """Start a fresh server (its own cache and keys); yields (url, log_dir)."""

    @contextlib.contextmanager
    def start(limits: Limits | None = None, log_dir: Path | None = None, victim=None, defence=None, specs=None):
        log_dir = log_dir or tmp_path / "logs"
        specs = {**SPECS, **(specs or {})}
        keys = Keys(KeysFile(keys={n: {"sha256": key_sha256(KEYS[n]), **specs[n]} for n in KEYS}), log_dir, defence)
        app = build_app(victim or Victim.from_checkpoint(checkpoint), keys, limits)
        try:
            with serve_in_thread(app) as url:
                yield url, log_dir
        finally:
            keys.close()

    return start


def test_http_embeddings_equal_in_process_and_count_the_same(serve, checkpoint, moses_sample):
    smiles = moses_sample[:300] + moses_sample[:50]  # repeats cost nothing
    with serve() as (url, log_dir):
        remote = RemoteVictim(url, api_key=KEYS["alice"])
        local = Victim.from_checkpoint(checkpoint)
        assert remote.dim == local.dim == 32 and remote.batch_size == 512
        assert remote.identity_sha256() == local.weights_sha256()
        assert remote.provenance == {"strategy": "attrmask"}  # the published recipe: no seed
        a, b = remote.embed(smiles), local.embed(smiles)
        assert a.dtype == np.float32 and np.array_equal(a, b)  # same forward batches: same bits
        assert remote.queries == local.queries == 300 and remote.server_used == 300
        remote.embed(moses_sample[:10])
        assert remote.queries == 300
        # a second client with the same key is answered but not charged again (the server remembers)
        again = RemoteVictim(url, api_key=KEYS["alice"], cache=False)
        assert np.array_equal(again.embed(moses_sample[:20]), b[:20]) and again.queries == 0
        lines = [json.loads(x) for x in (log_dir / "alice.jsonl").read_text().splitlines()]
    assert [x["charged"] for x in lines] == [300, 0] and lines[0]["n"] == 300 and lines[1]["computed"] == 0
    assert lines[0]["smiles"][0] == local.parse(moses_sample[0]).key and "time" in lines[0]


def test_output_defences_through_the_server(serve, checkpoint, moses_sample):
    """Deployment noise for alice, a per-key 3-bit quantisation for small: same answer for the same molecule
    in any spelling, noise of the set scale, at most 8 values per dimension, the defence in /health and the log."""
    from molleak.serve.defences import Defence

    clean = Victim.from_checkpoint(checkpoint).embed(moses_sample[:60])
    specs = {"small": {"budget": 100, "defence": {"quantize_bits": 3, "quantize_range": [-1, 1]}}}
    with serve(defence=Defence(noise_std=0.1), specs=specs) as (url, log_dir):
        health = httpx.get(f"{url}/health").json()
        assert health["defence"] == {"noise_std": 0.1} and health["defence_per_key"] is True

        def ask(key: str, smiles: list[str]) -> np.ndarray:
            r = httpx.post(f"{url}/v1/embed", json={"smiles": smiles}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
            return np.asarray(r.json()["embeddings"])

        noisy = ask(KEYS["alice"], moses_sample[:60])
        assert abs((noisy - clean).std() / 0.1 - 1) < 0.1  # 60 x 32 draws
        again = ask(KEYS["alice"], ["OCC", moses_sample[0]])  # "OCC" is ethanol as "CCO" is
        assert np.array_equal(again[1], noisy[0]) and np.array_equal(again[0], ask(KEYS["alice"], ["CCO"])[0])
        remote = RemoteVictim(url, api_key=KEYS["alice"], cache=False)  # the client sees the defended rows
        assert np.allclose(remote.embed(moses_sample[:5]), noisy[:5], atol=1e-6)
        quantised = ask(KEYS["small"], moses_sample[:60])
        assert all(len(np.unique(quantised[:, j])) <= 8 for j in range(quantised.shape[1]))
        assert np.abs(quantised - np.clip(clean, -1, 1)).max() <= 1 / 7 + 1e-6  # half a step of 2/7
    lines = [json.loads(x) for x in (log_dir / "alice.jsonl").read_text().splitlines()]
    assert all(x["defence"] == {"noise_std": 0.1} for x in lines)
    assert json.loads((log_dir / "small.jsonl").read_text())["defence"]["quantize_bits"] == 3
    assert (log_dir / "defence_secret").is_file()


def test_budget_is_enforced_by_the_server_and_survives_a_restart(serve, moses_sample):
    with serve() as (url, log_dir):
        small = RemoteVictim(url, api_key=KEYS["small"])
        small.embed(moses_sample[:5])
        small.embed(moses_sample[:5])  # cached: nothing sent
        fresh = RemoteVictim(url, api_key=KEYS["small"])  # no cache of its own: the server charges nothing
        fresh.embed(moses_sample[:3])
        assert small.queries == 5 and fresh.queries == 0
        with pytest.raises(QueryBudgetExceeded, match="budget is spent.*budget of 5 \\(5 used\\)"):
            small.embed(moses_sample[5:6])
        r = httpx.post(f"{url}/v1/embed", json={"smiles": [moses_sample[7]]},
                       headers={"Authorization": f"Bearer {KEYS['small']}"})
        assert r.status_code == 402 and "budget" in r.json()["error"]
        limited = RemoteVictim(url, api_key=KEYS["alice"], budget=2)  # the client's own budget, checked first
        with pytest.raises(QueryBudgetExceeded, match="3 new queries would exceed the budget of 2"):
            limited.embed(moses_sample[:3])
    with serve(log_dir=log_dir) as (url, _):  # a restart reads the log back: the budget stays spent
        with pytest.raises(QueryBudgetExceeded):
            RemoteVictim(url, api_key=KEYS["small"]).embed(moses_sample[5:6])
        assert RemoteVictim(url, api_key=KEYS["small"]).embed(moses_sample[:5]).shape == (5, 32)


def test_rate_limit_answers_429_and_the_client_waits(serve, moses_sample):
    with serve() as (url, _):
        auth = {"Authorization": f"Bearer {KEYS['slow']}"}
        assert httpx.post(f"{url}/v1/embed", json={"smiles": ["CCO"]}, headers=auth).status_code == 200
        r = httpx.post(f"{url}/v1/embed", json={"smiles": ["CCO"]}, headers=auth)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "rate limit" in r.json()["error"]
        slow = RemoteVictim(url, api_key=KEYS["slow"], batch_size=2)
        t0 = time.perf_counter()
        out = slow.embed(moses_sample[:6])  # 3 requests at 2/s with a burst of 1
        assert out.shape == (6, 32) and slow.queries == 6 and time.perf_counter() - t0 >= 0.9


@pytest.mark.parametrize(
    ("name", "content", "headers", "status", "message"),
    [
        ("no key", b'{"smiles": ["CCO"]}', {}, 401, "API key"),
        ("wrong key", b'{"smiles": ["CCO"]}', {"Authorization": "Bearer nope"}, 401, "API key"),
        ("malformed JSON", b'{"smiles": ["CCO"', None, 400, "not JSON"),
        ("non-UTF-8 bytes", b'{"smiles": ["C\xff\xfeO"]}', None, 400, "not UTF-8"),
        ("wrong field", b'{"smile": ["CCO"]}', None, 422, "smiles"),
        ("not strings", b'{"smiles": [1, 2]}', None, 422, "smiles.0"),
        ("oversize batch", json.dumps({"smiles": ["C"] * 9}).encode(), None, 413, "batch of 9"),
        ("10,000-character SMILES", json.dumps({"smiles": ["C" * 10_000]}).encode(), None, 413, "body"),
        ("long SMILES", json.dumps({"smiles": ["C" * 150]}).encode(), None, 422, "150 characters long"),
        ("huge body", b" " * 5000 + b'{"smiles": []}', None, 413, "body"),
    ],
)
def test_bad_requests_get_a_json_4xx_and_the_server_keeps_serving(serve, name, content, headers, status, message):
    with serve(Limits(max_batch=8, max_body_bytes=4096, max_smiles_length=100)) as (url, log_dir):
        headers = {"Authorization": f"Bearer {KEYS['alice']}"} if headers is None else headers
        r = httpx.post(f"{url}/v1/embed", content=content, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == status, (name, r.text)
        assert r.headers["content-type"].startswith("application/json") and message in r.json()["error"]
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        good = httpx.post(f"{url}/v1/embed", json={"smiles": ["CCO"]}, headers={"Authorization": f"Bearer {KEYS['alice']}"})
        assert good.status_code == 200 and len(good.json()["embeddings"][0]) == 32


def test_a_10000_character_smiles_is_refused_under_the_default_limits(serve):
    with serve() as (url, _):
        r = httpx.post(f"{url}/v1/embed", json={"smiles": ["C" * 10_000]},
                       headers={"Authorization": f"Bearer {KEYS['alice']}"})
        assert r.status_code == 422 and "10000 characters long" in r.json()["error"]
        assert httpx.get(f"{url}/nowhere").json() == {"error": "Not Found"}
        assert httpx.get(f"{url}/health").status_code == 200


def test_bad_smiles_are_per_item_errors(serve):
    with serve() as (url, log_dir):
        r = httpx.post(f"{url}/v1/embed", json={"smiles": ["CCO", "C1CC", "*C", "", "c1ccccc1"]},
                       headers={"Authorization": f"Bearer {KEYS['alice']}"})
        body = r.json()
        assert r.status_code == 200 and body["charged"] == 2
        assert [e["index"] for e in body["errors"]] == [1, 2, 3] and "invalid SMILES" in body["errors"][0]["error"]
        assert [row is None for row in body["embeddings"]] == [False, True, True, True, False]
        remote = RemoteVictim(url, api_key=KEYS["alice"])
        with pytest.raises(FeaturizationError, match="invalid SMILES 'C1CC'"):  # refused before sending
            remote.embed(["CCO", "C1CC"])
        assert remote.queries == 0


def test_client_errors_are_one_clear_line(serve, monkeypatch):
    monkeypatch.delenv("MOLLEAK_API_KEY", raising=False)
    with serve() as (url, _):
        with pytest.raises(MolleakError, match="refused the API key \\(HTTP 401.*set MOLLEAK_API_KEY"):
            RemoteVictim(url).embed(["CCO"])
        monkeypatch.setenv("MOLLEAK_API_KEY", KEYS["alice"])
        assert RemoteVictim(url).embed(["CCO"]).shape == (1, 32)  # the key from the environment
        with pytest.raises(FeaturizationError, match="over the server's bound of 1000"):
            RemoteVictim(url).embed(["C" * 1001])
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MolleakError, match="no answer after 3 attempts \\(ConnectError"):
        RemoteVictim(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01)
    with pytest.raises(MolleakError, match="no credentials or query string"):
        RemoteVictim("http://user:key@127.0.0.1:1")


def test_the_client_retries_5xx(serve, tmp_path, monkeypatch):
    """A plug-in victim that fails on its first call: the server answers 500, the client retries."""
    (tmp_path / "flaky_victim.py").write_text(
        "import numpy as np\ncalls = []\n"
        "def embed(smiles):\n"
        "    calls.append(len(smiles))\n"
        "    if len(calls) == 1:\n        raise RuntimeError('warming up')\n"
        "    return np.ones((len(smiles), 4))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from molleak.victims.plugin import PluginVictim

    with serve(victim=PluginVictim("flaky_victim:embed")) as (url, _):
        remote = RemoteVictim(url, api_key=KEYS["alice"], backoff_s=0.01)
        assert remote.embed(["CCO", "CCN"]).tolist() == [[1.0] * 4] * 2 and remote.queries == 2
        assert sys.modules["flaky_victim"].calls == [2, 2]


@pytest.fixture(scope="module")
def attacker_files(tmp_path_factory, moses_sample) -> Path:
    from molleak.candidates.vocab import mine_vocabulary

    out = tmp_path_factory.mktemp("attacker")
    (out / "aux.smi").write_text("\n".join(moses_sample[1000:1300]) + "\n")
    mine_vocabulary(moses_sample[1000:1300], n_templates=20, n_motifs=40, workers=1).save(out / "vocab")
    return out


def test_extract_over_http_equals_the_run_in_process(serve, checkpoint, attacker_files, tmp_path, monkeypatch, capsys):
    from molleak.cli.main import main

    def extract(victim: str, out: Path) -> dict:
        rc = main(["-q", "extract", "--victim", victim, "--aux", str(attacker_files / "aux.smi"), "--vocab",
                   str(attacker_files / "vocab"), "--method", "eq1", "--option", "alpha=0.5", "--k", "20",
                   "--seed", "3", "--workers", "1", "--out", str(out)])
        assert rc == 0, capsys.readouterr().err
        return json.loads((out / "extract.json").read_text())

    local = extract(str(checkpoint), tmp_path / "local")
    monkeypatch.setenv("MOLLEAK_API_KEY", KEYS["alice"])
    with serve() as (url, log_dir):
        remote = extract(url, tmp_path / "http")
        served = sum(json.loads(x)["charged"] for x in (log_dir / "alice.jsonl").read_text().splitlines())
    for name in ("scores.tsv", "topk.tsv"):
        assert (tmp_path / "http" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert remote["queries"] == local["queries"] == served > 512  # more than one request
    config = json.loads((tmp_path / "http" / "config.json").read_text())
    assert config["victim"] == url and config["victim_ref"]["sha256"] == Victim.from_checkpoint(checkpoint).weights_sha256()
    assert KEYS["alice"] not in (tmp_path / "http" / "config.json").read_text()


def test_molleak_serve_verb(checkpoint, tmp_path, monkeypatch, capsys, one_torch_thread):
    """The verb's wiring (keys file, log dir, limits, victim): the app it hands to uvicorn.run is run on a
    real uvicorn in a thread and queried. The full process is `test_molleak_serve_verb_in_a_subprocess`."""
    import uvicorn

    from molleak.cli.main import main

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"alice": {"sha256": key_sha256(KEYS["alice"]), "budget": 3}}}))
    seen = {}

    def run_and_query(app, host, port, **kwargs):
        with serve_in_thread(app, host) as url:
            remote = RemoteVictim(url, api_key=KEYS["alice"])
            seen["health"] = remote.health
            seen["emb"] = remote.embed(["CCO", "OCC", "c1ccccc1"])
            with pytest.raises(QueryBudgetExceeded):
                remote.embed(["CCN", "CCCl"])

    monkeypatch.setattr(uvicorn, "run", run_and_query)
    assert main(["serve", "--victim", str(checkpoint), "--keys", str(keys), "--max-batch", "7"]) == 0
    out = capsys.readouterr().out
    assert "serving victim gin (dim 32) to 1 keys on http://127.0.0.1:8000" in out and "output defence: none" in out
    assert seen["health"].max_batch == 7 and seen["emb"].shape == (3, 32)
    assert json.loads((tmp_path / "query_logs" / "alice.jsonl").read_text())["charged"] == 2
    for argv, message in [(["--keys", str(tmp_path / "missing.toml")], "keys file"),
                          (["--keys", str(keys), "--port", "70000"], "--port"),
                          (["--keys", str(keys), "--victim", "http://127.0.0.1:1"], "not another server"),
                          (["--keys", str(keys), "--defence", "noise_std=-1"], "--defence: noise_std")]:
        keys_and_victim = ["--victim", str(checkpoint), *argv] if "--victim" not in argv else argv
        assert main(["serve", *keys_and_victim]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("molleak: error:") and message in err and len(err.splitlines()) == 1
    keys.write_text(json.dumps({"keys": {"alice": {"sha256": "abc", "budget": 3, "colour": "red"}}}))
    assert main(["serve", "--victim", str(checkpoint), "--keys", str(keys)]) == 2
    assert "keys.alice.sha256" in capsys.readouterr().err


@pytest.mark.slow
def test_molleak_serve_verb_in_a_subprocess(checkpoint, tmp_path):
    """`molleak serve` itself: the verb starts uvicorn, answers, and stops on SIGTERM (slow: a fresh
    interpreter imports torch)."""
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[keys.alice]\nsha256 = "{key_sha256(KEYS["alice"])}"\nbudget = 100\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "molleak.cli.main", "serve", "--victim", str(checkpoint), "--keys",
                             str(keys), "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.2)
        remote = RemoteVictim(url, api_key=KEYS["alice"])
        assert remote.embed(["CCO", "OCC", "c1ccccc1"]).shape == (3, 32) and remote.queries == 2
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert b"serving victim gin" in out and (tmp_path / "query_logs" / "alice.jsonl").is_file()
    bad = subprocess.run([sys.executable, "-m", "molleak.cli.main", "serve", "--victim", str(checkpoint), "--keys",
                          str(keys.with_name("missing.toml"))], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("molleak: error: keys file") and "no such file" in bad.stderr


def test_keys_file_is_validated(tmp_path):
    from molleak.errors import InputFileError
    from molleak.serve.keys import load_keys

    sha = key_sha256("k")
    cases = {
        f'[keys."../evil"]\nsha256 = "{sha}"\n': "key name '../evil'",
        f'[keys.a]\nsha256 = "{sha}"\n[keys.b]\nsha256 = "{sha}"\n': "the same key sha256",
        f'[keys.a]\nsha256 = "{sha}"\nbudget = 0\n': "keys.a.budget",
        f'[keys.a]\nsha256 = "{sha}"\nrate = -1\n': "keys.a.rate",
        f'[keys.a]\nsha256 = "{sha}"\n[server]\nport = 1\n': "server: unknown key",
        "keys = {}\n": "keys:",
    }
    for text, message in cases.items():
        path = tmp_path / "keys.toml"
        path.write_text(text)
        with pytest.raises(InputFileError, match="^keys file ") as exc:
            load_keys(path)
        assert message in str(exc.value), (text, str(exc.value))
    path.write_text(f'[keys.a]\nsha256 = "{sha}"\nbudget = 3\nrate = 0.5\n')
    assert load_keys(path).keys["a"].burst == 10
