#!/usr/bin/env bash
# How much memory mshd takes for input a command never reads: `msh host 'sleep 60' < /dev/zero`
# and the same with OpenSSH's ssh. With flow control gated on consumption (vendor/russh,
# PATCHES.md) mshd should hold at most about one channel window (8 MiB) for it.
# Prints mshd's RSS before, its peak during SECS seconds of each flood, and the growth.
# Usage: bench/stdin_flood_rss.sh [SECS]   (default 10; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-10}

cargo build --release --bins -q
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
dir=$(fresh_dir flood)
user=$(id -un)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

port=$(free_port)
make_keys "$dir" id_ed25519 host_key
: > "$dir/mshd.toml"
start_mshd "$bin" "$dir" "$port" host_key
mshd=$mshd_pid; pids+=("$mshd")
wait_for_port "$port"
echo "[127.0.0.1]:$port $(cat "$dir/host_key.pub")" > "$dir/known_hosts"

MSH=("$bin/msh" -p "$port" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes "$user@127.0.0.1")
SSH=(ssh -F /dev/null -p "$port" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes
     "$user@127.0.0.1")

rss() { awk '/^VmRSS/ {print $2}' "/proc/$mshd/status"; }

flood() { # $1 = label, rest = client command
  local label=$1; shift
  "$@" true   # warm up: first-connection allocations are not the flood's
  local before peak now client
  before=$(rss)
  "$@" 'sleep 60' < /dev/zero > /dev/null 2>&1 &
  client=$!
  peak=$before
  for _ in $(seq 1 "$((secs * 10))"); do
    now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.1
  done
  kill "$client" 2>/dev/null || true; wait "$client" 2>/dev/null || true
  sleep 1
  printf '%-30s RSS before %7s KiB  peak %7s KiB  growth %7s KiB  after close %7s KiB\n' \
    "$label" "$before" "$peak" "$((peak - before))" "$(rss)"
}

echo "mshd stdin flood into 'sleep 60' for ${secs}s (channel window 8192 KiB)"
flood "msh < /dev/zero" "${MSH[@]}"
flood "ssh < /dev/zero" "${SSH[@]}"
