#!/usr/bin/env bash
# Side-by-side benchmark on loopback: msh -> mshd against OpenSSH ssh -> sshd, in one run.
# Prints each figure for both and the ratio msh/OpenSSH (lower is better for time and memory,
# higher is better for throughput).
#   connect+auth+exec `true` latency: median of N runs (default 30)
#   1 GiB throughput upload (stdin -> remote cat >/dev/null) and download (remote head -> us)
#   scp (OpenSSH's client, SFTP mode, the same sftp-server behind both daemons) of a SIZE file
#   memory per idle session: (RSS with K idle sessions - RSS with none) / K (default K=50)
# Usage: bench/compare.sh [-n RUNS] [-k IDLE_SESSIONS] [-s SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=30 idle=50 size_mib=1024
while getopts "n:k:s:" o; do
  case $o in
    n) runs=$OPTARG ;;
    k) idle=$OPTARG ;;
    s) size_mib=$OPTARG ;;
    *) echo "usage: $0 [-n RUNS] [-k IDLE_SESSIONS] [-s SIZE_MIB]" >&2; exit 2 ;;
  esac
done

for t in ssh sshd ssh-keygen python3; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || {
    echo "bench: $t missing: apt-get install openssh-client openssh-server python3" >&2; exit 1; }
done
SSHD=$(command -v sshd || echo /usr/sbin/sshd)

cargo build --release --bins -q
# CARGO_TARGET_DIR lets the release build live apart from a shared debug target dir.
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
dir=$PWD/target/bench
rm -rf "$dir"; mkdir -p "$dir"; chmod 0755 "$dir"
user=$(id -un)
[ "$(id -u)" -ne 0 ] || { mkdir -p /run/sshd; chmod 0755 /run/sshd; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() {
  for _ in $(seq 1 200); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listening on port $1" >&2; exit 1
}

ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519" -C bench
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"; chmod 0600 "$dir/authorized_keys"
ssh-keygen -q -t ed25519 -N '' -f "$dir/sshd_host_key" -C sshd-host
# mshd generates a host key only at its default path, so give it one here.
ssh-keygen -q -t ed25519 -N '' -f "$dir/mshd_host_key" -C mshd-host

# mshd
mport=$(freeport)
# The idle-session figure opens $idle connections at once from one address: raise the
# unauthenticated-connection limits on both daemons alike (sshd gets MaxStartups below).
printf 'max_startups = "200:30:300"\nper_source_max_startups = 0\n' > "$dir/mshd.toml"
"$bin/mshd" --config "$dir/mshd.toml" --listen "127.0.0.1:$mport" --host-key "$dir/mshd_host_key" \
  --authorized-keys "$dir/authorized_keys" >"$dir/mshd.log" 2>&1 &
mshd_pid=$!; pids+=("$mshd_pid")
# sshd, with its own config and nothing from /etc/ssh
sport=$(freeport)
cat > "$dir/sshd_config" <<CFG
Port $sport
ListenAddress 127.0.0.1
HostKey $dir/sshd_host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes yes
MaxStartups 200:30:300
MaxSessions 100
LogLevel ERROR
Subsystem sftp $(for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server; do [ -x "$p" ] && echo "$p" && break; done)
CFG
"$SSHD" -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
sshd_pid=$!; pids+=("$sshd_pid")
waitport "$mport"; waitport "$sport"

# known_hosts for both, so both clients run with strict checking and no prompt
"$bin/msh-keygen" scan "127.0.0.1:$mport" > "$dir/known_hosts" 2>"$dir/scan.log" || {
  echo "bench: msh-keygen scan of mshd failed: $(cat "$dir/scan.log"); see $dir/mshd.log" >&2; exit 1; }
ssh-keyscan -p "$sport" -t ed25519 127.0.0.1 >> "$dir/known_hosts" 2>/dev/null

MSH=("$bin/msh" -p "$mport" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes "$user@127.0.0.1")
SSH=(ssh -F /dev/null -p "$sport" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes
     "$user@127.0.0.1")
"${MSH[@]}" true || { echo "bench: msh -> mshd does not work; see $dir/mshd.log" >&2; exit 1; }
"${SSH[@]}" true || { echo "bench: ssh -> sshd does not work; see $dir/sshd.log" >&2; exit 1; }

now_ns() { date +%s%N; }
median_ms() { python3 -c 'import sys,statistics; v=[int(x) for x in sys.stdin.read().split()]; print("%.1f" % (statistics.median(v)/1e6))'; }
latency() {
  local out=()
  for _ in $(seq 1 "$runs"); do
    local t0; t0=$(now_ns); "$@" true; out+=($(( $(now_ns) - t0 )))
  done
  printf '%s\n' "${out[@]}" | median_ms
}
mbps() { python3 -c "print('%.0f' % ($size_mib*1048576/1e6/(($2-$1)/1e9)))"; }
upload() {
  local t0; t0=$(now_ns)
  head -c "$((size_mib*1048576))" /dev/zero | "$@" 'cat >/dev/null'
  mbps "$t0" "$(now_ns)"
}
download() {
  local t0; t0=$(now_ns)
  "$@" "head -c $((size_mib*1048576)) /dev/zero" >/dev/null
  mbps "$t0" "$(now_ns)"
}
scp_up() { # $1 = port; the file is sparse, so reading it costs nothing
  local t0; t0=$(now_ns)
  scp -q -F /dev/null -P "$1" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
    -o IdentitiesOnly=yes "$dir/scp-src" "$user@127.0.0.1:$dir/scp-dst-$1"
  mbps "$t0" "$(now_ns)"
  rm -f "$dir/scp-dst-$1"
}
rss_kib() { # total RSS of the given PIDs and all their descendants that are daemon processes
  python3 - "$@" <<'PY'
import os, sys
roots = set(int(p) for p in sys.argv[1:])
def kids(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
total, stack, seen = 0, list(roots), set()
while stack:
    p = stack.pop()
    if p in seen: continue
    seen.add(p)
    try:
        comm = open(f"/proc/{p}/comm").read().strip()
        status = open(f"/proc/{p}/status").read()
    except OSError:
        continue
    if comm.startswith(("mshd", "sshd")):
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    stack.extend(kids(p))
print(total)
PY
}
sleepers() { # number of `sleep 600` processes below daemon pid $1
  python3 - "$1" <<'PY'
import os, sys
n, stack, seen = 0, [int(sys.argv[1])], set()
while stack:
    p = stack.pop()
    if p in seen: continue
    seen.add(p)
    try:
        if open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")[:2] == [b"sleep", b"600"]:
            n += 1
    except OSError:
        pass
    # Threads other than the main one can be parents too (tokio spawns from workers).
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    stack.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
print(n)
PY
}
idle_per_session() { # $1 = daemon pid, rest = client command
  local daemon=$1; shift
  local before; before=$(rss_kib "$daemon")
  local cpids=()
  for _ in $(seq 1 "$idle"); do
    "$@" 'sleep 600' </dev/null >/dev/null 2>&1 &
    cpids+=($!)
  done
  # Measure only once every session is really open: its `sleep 600` runs under the daemon.
  local open=0
  for _ in $(seq 1 300); do
    open=$(sleepers "$daemon")
    [ "$open" -ge "$idle" ] && break
    sleep 0.2
  done
  [ "$open" -ge "$idle" ] || echo "bench: only $open of $idle idle sessions opened in 60 s" >&2
  sleep 1
  local after; after=$(rss_kib "$daemon")
  for p in "${cpids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${cpids[@]}"; do wait "$p" 2>/dev/null || true; done
  python3 -c "print('%.0f' % (($after-$before)/$idle))"
}
ratio() { python3 -c "print('%.2f' % ($1/$2) if $2 else 'n/a')"; }

echo "msh vs OpenSSH on loopback ($(ssh -V 2>&1)); runs=$runs idle=$idle size=${size_mib}MiB"
printf '%-40s %12s %12s %8s\n' "figure" "msh" "OpenSSH" "ratio"
ml=$(latency "${MSH[@]}"); sl=$(latency "${SSH[@]}")
printf '%-40s %12s %12s %8s\n' "connect+auth+exec median (ms)" "$ml" "$sl" "$(ratio "$ml" "$sl")"
mu=$(upload "${MSH[@]}"); su=$(upload "${SSH[@]}")
printf '%-40s %12s %12s %8s\n' "upload ${size_mib} MiB (MB/s)" "$mu" "$su" "$(ratio "$mu" "$su")"
md=$(download "${MSH[@]}"); sd=$(download "${SSH[@]}")
printf '%-40s %12s %12s %8s\n' "download ${size_mib} MiB (MB/s)" "$md" "$sd" "$(ratio "$md" "$sd")"
truncate -s "$((size_mib*1048576))" "$dir/scp-src"
mc=$(scp_up "$mport"); sc=$(scp_up "$sport")
printf '%-40s %12s %12s %8s\n' "scp upload ${size_mib} MiB (MB/s)" "$mc" "$sc" "$(ratio "$mc" "$sc")"
mm=$(idle_per_session "$mshd_pid" "${MSH[@]}"); sm=$(idle_per_session "$sshd_pid" "${SSH[@]}")
printf '%-40s %12s %12s %8s\n' "daemon RSS per idle session (KiB)" "$mm" "$sm" "$(ratio "$mm" "$sm")"
