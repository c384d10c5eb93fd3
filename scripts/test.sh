#!/usr/bin/env bash
# Runs every msh test on this machine. Installs what building and the tests need first
# (scripts/deps.sh test: libpam0g-dev, OpenSSH client and server and sftp-server as interop
# peers, tmux, rsync, tar, passwd/util-linux for the root-mode tests' throwaway users, ...)
# from Debian's packages when any is missing.
# Usage: scripts/test.sh [extra args for `cargo test`]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test
# sshd refuses to start (even with its own config) without its privilege-separation dir.
if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd && chmod 0755 /run/sshd; fi

. scripts/lib.sh
msh_pick_target_dir

# Wire probes (tests/probes/sshprobe.py: paramiko) and ssh-audit for mshd's hardening tests,
# in a venv under target/ so nothing is installed system-wide.
venv=$MSH_TARGET_DIR/probe-venv
if ! "$venv/bin/python" -c 'import paramiko' >/dev/null 2>&1 || [ ! -x "$venv/bin/ssh-audit" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'paramiko>=3.4,<5' 'ssh-audit==3.9.*'
fi

# Dependency checks (licences, one version of each crate, no unused dependency): their
# failure fails the run, after the tests have run too.
status=0
deps_ok=1
scripts/check-deps.sh || { status=1; deps_ok=0; }

# The end-to-end tests run the built binaries, so build them first.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@" || status=$?
# msh's patch of russh (vendor/russh/PATCHES.md): its own tests and upstream's channel tests.
# The crate is outside the workspace; building it in the same target dir shares the
# dependencies already built.
cargo test --manifest-path vendor/russh/Cargo.toml --target-dir "$MSH_TARGET_DIR" \
  --no-fail-fast --test msh_flow_control --test test_window_adjust --test test_backpressure \
  --test test_data_stream --test msh_hostkeys || status=$?
[ "$deps_ok" = 1 ] ||
  echo "scripts/test.sh: FAILED: dependency checks (scripts/check-deps.sh, output above)" >&2
exit "$status"
