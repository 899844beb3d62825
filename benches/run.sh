#!/usr/bin/env bash
# End-to-end benchmarks of ds100-offboard against its own simulator on 127.0.0.1 (SPEC §11):
# overhead next to oha, pacing precision, a throttled server, and peak memory.
#
#   benches/run.sh                       # everything, 3 repetitions, medians (~20 min on 2 cores)
#   benches/run.sh overhead pacing       # only some benchmarks
#   REPS=1 benches/run.sh throttled      # fewer repetitions
#   MEMORY_ROWS="10000 100000" benches/run.sh memory
#   BASELINE_BIN=/path/to/older/ds100-offboard benches/run.sh overhead   # side by side
#
# Needs: a Rust toolchain, bash and Python 3 (standard library only). Builds the release
# binary first. oha (the HTTP load tool the overhead benchmark compares with) is taken from
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

exec python3 "$root/benches/bench.py" "$@"
