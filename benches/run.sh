#!/usr/bin/env bash
# End-to-end benchmarks of ds100-offboard against its own simulator on 127.0.0.1 (README,
# Performance): overhead next to a plain aiohttp script and oha, pacing precision, a throttled
# server, and peak memory.
#
#   benches/run.sh                       # everything, 3 repetitions, medians (~30 min on 2 cores)
#   benches/run.sh overhead pacing       # only some benchmarks
#   REPS=1 benches/run.sh throttled      # fewer repetitions
#   MEMORY_ROWS="10000 100000" benches/run.sh memory
#   BASELINE_BIN=/path/to/older/ds100-offboard benches/run.sh overhead   # side by side
#
# Needs: a Rust toolchain, bash and Python 3. Builds the release binary first. The overhead
# benchmark runs benches/aiohttp_baseline.py, so aiohttp is installed with pip when missing
# (NO_AIOHTTP_INSTALL=1 refuses instead). oha (the HTTP load tool the overhead benchmark compares with) is taken from
# $OHA or PATH; if missing it is installed once with `cargo install oha --locked` into
# target/bench-tools (a few minutes; set NO_OHA=1 to skip the comparison instead).
# All traffic goes to simulators this script starts on 127.0.0.1; every loop is bounded.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "building the release binary…" >&2
cargo build --release --locked --quiet

if [[ -z "${OHA:-}" && "${NO_OHA:-0}" != 1 ]]; then
    if command -v oha >/dev/null 2>&1; then
        OHA="$(command -v oha)"
    else
        OHA="$root/target/bench-tools/bin/oha"
        if [[ ! -x "$OHA" ]]; then
            echo "installing oha into target/bench-tools (once)…" >&2
            cargo install oha --locked --quiet --root "$root/target/bench-tools"
        fi
    fi
    export OHA
fi

wants_overhead=1
if [[ $# -gt 0 ]]; then
    wants_overhead=0
    for b in "$@"; do [[ "$b" == overhead ]] && wants_overhead=1; done
fi
if [[ $wants_overhead == 1 ]] && ! python3 -c 'import aiohttp' 2>/dev/null; then
    if [[ "${NO_AIOHTTP_INSTALL:-0}" == 1 ]]; then
        echo "aiohttp is missing (pip install aiohttp)" >&2
        exit 1
    fi
    echo "installing aiohttp with pip (once)…" >&2
    python3 -m pip install --quiet aiohttp
fi

exec python3 "$root/benches/bench.py" "$@"
