#!/usr/bin/env python3
"""The benchmark driver behind benches/run.sh (README, Performance). Standard library only;
the overhead benchmark also runs benches/aiohttp_baseline.py, which needs aiohttp.

Starts `ds100-offboard sim` on 127.0.0.1 (port 0), builds inputs from the simulator's own
store (GET /__sim/store), runs the release binary with DS100_TOKEN and `--yes -q
--summary-json`, and measures every process with wait4() (wall time, user+system CPU, peak
RSS). Each measurement runs REPS times; tables show medians. Every loop is bounded.
"""

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("DS100_BIN", ROOT / "target" / "release" / "ds100-offboard"))
OHA = os.environ.get("OHA", "")
# Another build of ds100-offboard (e.g. of an older commit) to run next to BIN in the overhead
# benchmark, interleaved, so a change is measured side by side in one run.
BASELINE = os.environ.get("BASELINE_BIN", "")
REPS = int(os.environ.get("REPS", "3"))
OVERHEAD_ROWS = int(os.environ.get("OVERHEAD_ROWS", "50000"))
MEMORY_ROWS = [int(n) for n in os.environ.get("MEMORY_ROWS", "10000 1000000").split()]
CONCURRENCY = 8
TOKEN = "bench-token"
DELETE_PATH = "/AdminInterface/restapi/v1/ds100/delete/otp"
# No generated credential has this token serial, so every oha DELETE is an honest 404 lookup.
ABSENT_BODY = json.dumps(
    {
        "tokenSerialNumber": "099999999999",
        "deviceSerialNumber": "099999999",
        "userId": "00000000-0000-0000-0000-000000000000",
    }
)
# `sim` prints its URL alone on its first line of stdout.
URL_LINE = re.compile(r"^(http://127\.0\.0\.1:\d+)\s*$")


class Sim:
    """A simulator process on 127.0.0.1:0, stopped with SIGTERM."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [str(BIN), "sim", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        m = URL_LINE.match(line)
        if not m:
            self.stop()
            sys.exit(f"the simulator did not print its URL; first line: {line!r}")
        self.url = m.group(1)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=120) as resp:
            return resp.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(cmd, env=None):
    """Runs cmd to completion; wall seconds, CPU seconds (user+sys), peak RSS in MiB.

    CPU comes from wait4(). Peak RSS does not: Linux carries ru_maxrss across execve, so a
    child forked from this (large) Python process would report Python's size. GNU time forks
    the command from its own small process and reports that child's peak exactly; without
    it, /proc/PID/status VmHWM is sampled every 10 ms until the exit.
    """
    with tempfile.NamedTemporaryFile() as rss_file, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        argv = [str(c) for c in cmd]
        if TIME:
            argv = [TIME, "-f", "%M", "-o", rss_file.name, *argv]
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        status_file = Path(f"/proc/{proc.pid}/status")
        hwm_kib = 0
        while True:
            # Bounded by the child's own run; every benchmark command ends by itself.
            pid, status, usage = os.wait4(proc.pid, 0 if TIME else os.WNOHANG)
            if pid:
                break
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm_kib = max(hwm_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if TIME:
            rss_lines = Path(rss_file.name).read_text().split()
            hwm_kib = int(rss_lines[-1]) if rss_lines else 0
        cpu = usage.ru_utime + usage.ru_stime
        csw = usage.ru_nvcsw + usage.ru_nivcsw
        out.seek(0)
        err.seek(0)
        return {
            "wall": wall,
            "cpu": cpu,
            "csw": csw,
            "rss_mib": hwm_kib / 1024.0,
            "rc": proc.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def client_env(url):
    env = dict(os.environ)
    env.update({"DS100_TOKEN": TOKEN, "DS100_BASE_URL": url, "NO_COLOR": "1"})
    env.pop("RUST_LOG", None)
    return env


def run_client(url, input_csv, workdir, extra, binary=None):
    summary = Path(workdir) / "summary.json"
    report = Path(workdir) / "report.csv"
    cmd = [
        binary or BIN, "run", input_csv, "--yes", "-q", "--overwrite",
        "--report", report, "--summary-json", summary, *extra,
    ]
    m = measure(cmd, client_env(url))
    if m["rc"] not in (0, 1):
        sys.exit(f"run exited {m['rc']}: {m['stderr'][-2000:]}")
    m["summary"] = json.loads(summary.read_text())
    return m


def store_csv(sim, path, first=0, count=None):
    """Writes rows [first, first+count) of the simulator's store as an input CSV."""
    lines = sim.get("/__sim/store").decode().splitlines()
    header, rows = lines[0], lines[1:]
    rows = rows[first:] if count is None else rows[first:first + count]
    Path(path).write_text(header + "\n" + "\n".join(rows) + "\n")
    return len(rows)


def med(values):
    return statistics.median(values)


def table(title, head, rows, notes=()):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"\n### {title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    for n in notes:
        print(f"\n{n}")
    sys.stdout.flush()


def has_flag(flag):
    out = subprocess.run([str(BIN), "run", "--help"], capture_output=True, text=True).stdout
    return flag in out


# ---------------------------------------------------------------------------------------------


AIOHTTP_SCRIPT = ROOT / "benches" / "aiohttp_baseline.py"


def bench_overhead(tmp):
    """run next to a plain aiohttp script and oha: same server, same endpoint, same
    concurrency, interleaved repetitions."""
    n = OVERHEAD_ROWS
    ours, theirs, script, base = [], [], [], []
    deleting_runs = 2 + (1 if BASELINE else 0)
    run_args = ["--rate", "1000000/s", "--concurrency", str(CONCURRENCY), "--stop-after", "0"]
    with Sim("--generate", str(n * REPS * deleting_runs), "--token", TOKEN) as sim:
        for rep in range(REPS):
            # Each deleting client gets rows still in the store: it shrinks by n per run.
            if BASELINE:
                inp = Path(tmp) / f"overhead-baseline-{rep}.csv"
                store_csv(sim, inp, first=0, count=n)
                m = run_client(sim.url, inp, tmp, run_args, binary=BASELINE)
                if m["summary"]["statuses"].get("deleted") != n:
                    sys.exit(f"baseline run did not delete every row: {m['summary']['statuses']}")
                base.append(m)
            inp = Path(tmp) / f"overhead-aiohttp-{rep}.csv"
            store_csv(sim, inp, first=0, count=n)
            report = Path(tmp) / "aiohttp-report.csv"
            m = measure(
                [sys.executable, AIOHTTP_SCRIPT, sim.url, inp, report, str(CONCURRENCY)],
                client_env(sim.url),
            )
            if m["rc"] != 0:
                sys.exit(f"the aiohttp script failed: {m['stderr'][-2000:]}")
            statuses = [line.rsplit(",", 2)[-2] for line in report.read_text().splitlines()[1:]]
            if len(statuses) != n or any(st != "200" for st in statuses):
                sys.exit("the aiohttp script did not delete every row")
            script.append(m)
            if OHA:
                m = measure(
                    [
                        OHA, "-n", str(n), "-c", str(CONCURRENCY), "--no-tui",
                        "--output-format", "json", "-m", "DELETE",
                        "-H", f"Authorization: Bearer {TOKEN}",
                        "-H", "Content-Type: application/json",
                        "-d", ABSENT_BODY, sim.url + DELETE_PATH,
                    ]
                )
                if m["rc"] != 0:
                    sys.exit(f"oha failed: {m['stderr'][-2000:]}")
                stats = json.loads(m["stdout"])
                m["own_rps"] = stats["summary"]["requestsPerSec"]
                theirs.append(m)
            inp = Path(tmp) / f"overhead-{rep}.csv"
            store_csv(sim, inp, first=0, count=n)
            m = run_client(sim.url, inp, tmp, run_args)
            s = m["summary"]
            if s["statuses"].get("deleted") != n:
                sys.exit(f"overhead run did not delete every row: {s['statuses']}")
            ours.append(m)

    def row(name, ms):
        wall = med([m["wall"] for m in ms])
        cpu = med([m["cpu"] for m in ms])
        return [
            name,
            f"{med([n / m['wall'] for m in ms]):,.0f}",
            f"{wall:.2f}",
            f"{cpu:.2f}",
            f"{cpu / n * 1e6:.0f}",
            f"{med([m['rss_mib'] for m in ms]):.1f}",
        ]

    def ratio(a, b):
        return med([bm["wall"] / am["wall"] for am, bm in zip(a, b)])

    sent = med([m["summary"]["invocation"]["requests_sent"] for m in ours])
    rows = [row(f"ds100-offboard run ({n:,} rows)", ours)]
    if base:
        rows.append(row(f"baseline run ({Path(BASELINE).name})", base))
    rows.append(row(f"aiohttp script ({n:,} rows)", script))
    notes = [
        "rows/s = rows ÷ process wall time (start-up, and for `run` the file pre-scan and the "
        "check before the plan, included); CPU = user + system time of the client process; "
        f"medians of {REPS} interleaved repetitions. `run` sent {sent:,.0f} requests "
        "(the rows and the check).",
        f"run / aiohttp script: **{ratio(ours, script):.2f} ×** (median of per-repetition "
        "ratios; target ≥ 4 ×).",
    ]
    if theirs:
        rows.append(row(f"oha ({n:,} DELETEs)", theirs))
        own = med([o["own_rps"] for o in theirs])
        pipeline = med([n / o["summary"]["invocation"]["elapsed_seconds"] for o in ours])
        notes.append(
            f"run / oha: **{ratio(ours, theirs):.0%}** (median of per-repetition ratios; "
            f"target ≥ 40 %). oha's own req/s figure: {own:,.0f}; run's rows/s over its "
            f"pipeline alone: {pipeline:,.0f}."
        )
        if base:
            notes.append(f"baseline / oha: {ratio(base, theirs):.0%}.")
        notes.append(
            "All send DELETE …/ds100/delete/otp with a bearer token and a JSON body over "
            f"{CONCURRENCY} keep-alive connections to one zero-latency simulator; run's and the "
            "script's requests delete real credentials (200), oha's name an absent one (404): "
            "the same store lookup on the server."
        )
    head = ["client", "rows/s", "wall s", "CPU s", "CPU µs/row", "peak RSS MiB"]
    table("Overhead: zero-latency loopback, no rate limit, concurrency 8", head, rows, notes)


def window_max(arrivals_us, width_us=1_000_000):
    best, lo = 0, 0
    for hi, t in enumerate(arrivals_us):
        while arrivals_us[lo] <= t - width_us:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def bench_pacing(tmp):
    n, rate, burst = 2000, 100.0, 1
    results = []
    for rep in range(REPS):
        with Sim("--generate", str(n), "--token", TOKEN, "--record-arrivals") as sim:
            inp = Path(tmp) / "pacing.csv"
            store_csv(sim, inp)
            m = run_client(sim.url, inp, tmp, ["--rate", f"{rate:g}/s", "--burst", str(burst)])
            arrivals = sorted(json.loads(sim.get("/__sim/arrivals")))
        # The first arrival is the check before the plan, paced on its own; the run's own
        # requests follow it.
        checked = arrivals
        arrivals = arrivals[1:]
        if m["summary"]["invocation"]["requests_sent"] != len(checked):
            sys.exit(f"{len(checked)} arrivals for {m['summary']['requests_sent']} requests")
        achieved = (len(arrivals) - 1) / ((arrivals[-1] - arrivals[0]) / 1e6)
        results.append((len(arrivals), achieved, window_max(arrivals), m, window_max(checked)))
    rows = [
        [
            f"--rate {rate:g}/s --burst {burst}",
            f"{med([r[0] for r in results]):.0f}",
            f"{med([r[1] for r in results]):.2f}/s",
            f"{med([abs(r[1] - rate) / rate for r in results]):.2%}",
            f"{max(r[2] for r in results)}",
            f"{max(r[4] for r in results)}",
            f"{rate + burst:g}",
        ]
    ]
    head = ["run", "requests", "achieved", "error", "max in any 1 s", "with the check",
            "allowed"]
    notes = [
        "achieved = (requests − 1) ÷ (last arrival − first arrival), arrivals of the run's "
        "requests as the simulator recorded them (the check before the plan left out; "
        "'with the check' counts it too); median of "
        f"{REPS}; 'max in any 1 s' is the worst sliding 1-second window over all repetitions."
    ]
    table(f"Pacing: {n:,} requests at --rate {rate:g}/s", head, rows, notes)


def bench_throttled(tmp):
    n, limit, rate = 3000, 50.0, 200.0
    ideal = n / limit
    servers = [
        ("1 s bucket, Retry-After", []),
        ("5-request bucket, no Retry-After", ["--rate-limit-burst", "5", "--retry-after", "none"]),
    ]
    if has_flag("--no-adaptive"):
        clients = [("adaptive (default)", []), ("--no-adaptive", ["--no-adaptive"])]
    else:
        clients = [("fixed rate (build without adaptive control)", [])]
    rows = []
    for server, server_args in servers:
        for client, extra in clients:
            results = []
            for rep in range(REPS):
                with Sim("--generate", str(n), "--token", TOKEN,
                         "--rate-limit", f"{limit:g}/s", *server_args) as sim:
                    inp = Path(tmp) / "throttled.csv"
                    store_csv(sim, inp)
                    m = run_client(
                        sim.url, inp, tmp,
                        ["--rate", f"{rate:g}/s", "--concurrency", str(CONCURRENCY),
                         "--stop-after", "0", *extra],
                    )
                    results.append(m)
            s = [m["summary"] for m in results]
            inv = [x["invocation"] for x in s]
            rows.append(
                [
                    server,
                    client,
                    f"{med([m['wall'] for m in results]):.1f}",
                    f"{med([m['wall'] / ideal for m in results]):.3f}",
                    f"{med([x['throttled_429'] / x['requests_sent'] for x in inv]):.2%}",
                    f"{med([x['requests_sent'] for x in inv]):.0f}",
                    f"{med([x['statuses'].get('deleted', 0) for x in s]):.0f}",
                    f"{med([x.get('final_rate_per_second') or 0 for x in inv]):.1f}/s",
                ]
            )
    head = ["server", "client", "wall s", "× ideal", "429 share", "requests", "deleted",
            "final rate"]
    notes = [
        f"Simulator `--rate-limit {limit:g}/s` (default bucket: one second's worth, "
        "Retry-After in whole seconds), client "
        f"`--rate {rate:g}/s --concurrency {CONCURRENCY}`, {n:,} rows; ideal = {n:,} ÷ "
        f"{limit:g}/s = {ideal:.0f} s; wall includes start-up; medians of {REPS}. "
        "Targets (first server): ≤ 1.10 × ideal, < 5 % 429s."
    ]
    table("Throttled server", head, rows, notes)


def bench_memory(tmp):
    biggest = max(MEMORY_ROWS)
    inputs = {}
    with Sim("--generate", str(biggest), "--token", TOKEN) as sim:
        whole = Path(tmp) / f"memory-{biggest}.csv"
        store_csv(sim, whole)
    lines = whole.read_text().splitlines(keepends=True)
    for n in MEMORY_ROWS:
        path = Path(tmp) / f"memory-{n}.csv"
        if n != biggest:
            path.write_text("".join(lines[: n + 1]))
        inputs[n] = path
    del lines
    rows = []
    for n in MEMORY_ROWS:
        val = []
        for rep in range(REPS):
            m = measure([BIN, "validate", inputs[n], "-q", "--overwrite",
                         "--report", Path(tmp) / "validation.csv"])
            if m["rc"] != 0:
                sys.exit(f"validate exited {m['rc']}: {m['stderr'][-2000:]}")
            val.append(m)
        run = []
        for rep in range(REPS):
            with Sim("--generate", str(n), "--token", TOKEN) as sim:
                run.append(
                    run_client(sim.url, inputs[n], tmp,
                               ["--rate", "1000000/s", "--concurrency", str(CONCURRENCY),
                                "--stop-after", "0"])
                )
        rows.append([f"{n:,}", "validate", f"{med([m['rss_mib'] for m in val]):.1f}",
                     f"{med([m['wall'] for m in val]):.2f}"])
        rows.append([f"{n:,}", "run", f"{med([m['rss_mib'] for m in run]):.1f}",
                     f"{med([m['wall'] for m in run]):.1f}"])
    head = ["rows", "command", "peak RSS MiB", "wall s"]
    notes = [f"Peak RSS of the client process (GNU time, else /proc VmHWM samples); medians of {REPS}. "
             "Targets: ≤ 64 MiB at 1,000,000 rows and ≤ 1.5 × the 10,000-row figure."]
    table("Memory", head, rows, notes)


BENCHES = {
    "overhead": bench_overhead,
    "pacing": bench_pacing,
    "throttled": bench_throttled,
    "memory": bench_memory,
}


def machine():
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
            f"commit {rev}{' (modified)' if dirty else ''}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def main(argv):
    chosen = argv or list(BENCHES)
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmark {unknown}; choose from {', '.join(BENCHES)}")
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: build with cargo build --release (benches/run.sh does)")
    print(f"## ds100-offboard benchmarks\n\n{machine()}; {REPS} repetitions each.")
    with tempfile.TemporaryDirectory(prefix="ds100-bench-") as tmp:
        for name in chosen:
            BENCHES[name](tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
