#!/usr/bin/env bash
# Smoke-fuzzes msh's parsers (msh-common's, mshd's config, msh's ssh_config): builds every
# cargo-fuzz target in fuzz/ and runs each for
# SECONDS (default 10) on its committed seed corpus (fuzz/corpus/<target>/) plus the committed
# regression seeds (fuzz/artifacts-regressions/<target>/). Fails when any target crashes,
# hangs past -timeout or trips an assertion; the crashing input is left in
# fuzz/artifacts/<target>/ and named in the output.
#
#   scripts/fuzz-smoke.sh [SECONDS]
#
# Installs cargo-fuzz (`cargo install --locked cargo-fuzz`) when it is missing. cargo-fuzz
# needs nightly compiler flags (-Zsanitizer, -Cpasses=sancov); this project has one stable
# toolchain, so RUSTC_BOOTSTRAP=1 unlocks them (see fuzz/README.md).
#
# FUZZ_SANITIZER (default none) is passed to `cargo fuzz -s`: the parsers are safe Rust, so a
# bug shows as a panic (overflow checks and debug assertions are on either way); `address`
# (AddressSanitizer) builds and runs about twice as slowly. Builds go to
# fuzz/target/<sanitizer>/ (separate from the workspace's target/, and one per sanitizer so
# switching does not rebuild); new inputs the fuzzer finds go to fuzz/target/smoke-corpus/,
# never into the committed corpus.
set -euo pipefail

secs="${1:-10}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
san="${FUZZ_SANITIZER:-none}"
opts=(-s "$san" --target-dir "$fuzz/target/$san")
export RUSTC_BOOTSTRAP=1
# A CARGO_TARGET_DIR set for the workspace must not pull the instrumented build in there.
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

cd "$root"
start=$(date +%s)
mapfile -t targets < <(cargo fuzz list)
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz-smoke: no targets in $fuzz" >&2; exit 1; }
echo "fuzz-smoke: building ${targets[*]} (sanitizer $san)"
cargo fuzz build "${opts[@]}"
built=$(date +%s)

passed=0
failed=()
summary=()
for t in "${targets[@]}"; do
    work="$fuzz/target/smoke-corpus/$t"
    log="$fuzz/target/smoke-$t.log"
    mkdir -p "$work"
    dirs=("$work" "$fuzz/corpus/$t")
    [ -d "$fuzz/artifacts-regressions/$t" ] && dirs+=("$fuzz/artifacts-regressions/$t")
    echo "fuzz-smoke: $t for ${secs}s"
    if cargo fuzz run "${opts[@]}" "$t" "${dirs[@]}" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        passed=$((passed + 1))
    else
        failed+=("$t")
        echo "fuzz-smoke: $t FAILED; last lines of $log:" >&2
        tail -n 40 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    summary+=("$(printf '%-16s execs=%-9s execs/s=%-7s cov=%s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}")")
done
end=$(date +%s)

printf '%s\n' "${summary[@]}"
echo "fuzz-smoke: build $((built - start))s, runs $((end - built))s, total $((end - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
fi
echo "fuzz-smoke: $passed passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
