#!/usr/bin/env bash
# mshd's cost per idle session and what comes back when sessions end (issue 8, items 4-5).
#   1. baseline: RSS and open descriptors of a fresh mshd after one login; login latency
#      (median of L `msh host true`, idle server)
#   2. SEQ sessions of `sleep 600` opened one at a time (one connection each): KiB per session
#   3. N sessions opened PAR at a time: KiB and descriptors per session, login latency while
#      they are open (and its ratio to the idle-server login)
#   4. every connection dropped at once (the client process is killed): how long until mshd's
#      descriptor count is back to baseline, and its RSS then and 10 s later
# Sessions are held by bench/sessions_driver.py (paramiko); the `sleep 600` processes carry on
# after the drop, as under sshd, and are killed by PID at the end.
# Usage: bench/sessions.sh [-n N] [-p PAR] [-s SEQ] [-l LOGINS] [-b BIN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

n=1000 par=16 seq=50 logins=20 bindir=
while getopts "n:p:s:l:b:" o; do
  case $o in
    n) n=$OPTARG ;;
    p) par=$OPTARG ;;
    s) seq=$OPTARG ;;
    l) logins=$OPTARG ;;
    b) bindir=$OPTARG ;;
    *) echo "usage: $0 [-n N] [-p PAR] [-s SEQ] [-l LOGINS] [-b BIN_DIR]" >&2; exit 2 ;;
  esac
done

py=${CARGO_TARGET_DIR:-$PWD/target}/probe-venv/bin/python
[ -x "$py" ] || py=$PWD/target/probe-venv/bin/python
"$py" -c 'import paramiko' 2>/dev/null || {
  echo "bench: paramiko missing: python3 -m venv target/probe-venv && target/probe-venv/bin/pip install paramiko" >&2; exit 1; }
if [ -z "$bindir" ]; then
  cargo build --release -p msh-server -p msh-client --bins -q
  bindir=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
dir=$(fresh_dir sessions)
user=$(id -un)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "${mshd_pid:-}" ] && kill_sleepers
  kill "${mshd_pid:-0}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

make_keys "$dir" id host
port=$(free_port)
# Connections arrive PAR at a time from one address: no per-source limit in the way.
printf 'max_startups = "200:30:300"\nper_source_max_startups = 0\nmax_sessions = 10\n' > "$dir/mshd.toml"
start_mshd "$bindir" "$dir" "$port" host
wait_for_port "$port"
echo "127.0.0.1 $(cut -d' ' -f1-2 "$dir/host.pub")" | sed "s/^127.0.0.1/[127.0.0.1]:$port/" > "$dir/known_hosts"

now_ns() { date +%s%N; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$mshd_pid/status"; }
fds() { ls "/proc/$mshd_pid/fd" | wc -l; }
msh_true() {
  "$bindir/msh" -F none -p "$port" -l "$user" -i "$dir/id" -o "UserKnownHostsFile=$dir/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes 127.0.0.1 true
}
login_ms() { # median wall time of $logins logins running `true`, in ms
  local t=()
  for _ in $(seq 1 "$logins"); do
    local t0; t0=$(now_ns); msh_true; t+=($(( ($(now_ns) - t0) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}
sleepers() { # PIDs of `sleep 600` processes below mshd
  python3 - "$mshd_pid" <<'PY'
import os, sys
root = int(sys.argv[1])
kids = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            st = open(f"/proc/{p}/stat").read()
            ppid = int(st[st.rfind(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(p))
        except (OSError, ValueError, IndexError):
            pass
stack, out = [root], []
while stack:
    p = stack.pop()
    for c in kids.get(p, []):
        stack.append(c)
        try:
            if open(f"/proc/{c}/cmdline").read().replace("\0", " ").strip() == "sleep 600":
                out.append(c)
        except OSError:
            pass
print(" ".join(map(str, out)))
PY
}
kill_sleepers() { local p; p=$(sleepers); [ -z "$p" ] || kill -9 $p 2>/dev/null || true; }
hold() { # $1 = sessions, $2 = parallel[, $3 = command]; starts the driver, waits until all are open
  rm -f "$dir/driver.out"; mkfifo "$dir/driver.in" 2>/dev/null || true
  "$py" bench/sessions_driver.py 127.0.0.1 "$port" "$user" "$dir/id" "$1" "$2" "${3:-sleep 600}" \
    <"$dir/driver.in" >"$dir/driver.out" 2>"$dir/driver.err" &
  driver=$!; pids+=("$driver"); disown "$driver"
  exec 7>"$dir/driver.in"
  for _ in $(seq 1 3000); do [ -s "$dir/driver.out" ] && break; sleep 0.1; done
  grep -q '^opened' "$dir/driver.out" || { echo "bench: driver: $(cat "$dir/driver.out" "$dir/driver.err")" >&2; exit 1; }
  [ "${3:-}" = - ] || for _ in $(seq 1 600); do [ "$(sleepers | wc -w)" -ge "$1" ] && break; sleep 0.1; done
  sleep 1
}
drop() { # kills the driver (every connection drops at once); prints seconds until fds <= $1
  kill -9 "$driver"; while [ -e "/proc/$driver" ]; do sleep 0.02; done; exec 7>&-
  local t0; t0=$(now_ns)
  for _ in $(seq 1 600); do [ "$(fds)" -le "$1" ] && break; sleep 0.05; done
  local f; f=$(fds)
  awk -v ns=$(( $(now_ns) - t0 )) -v f="$f" -v b="$1" \
    'BEGIN {if (f > b) printf "NOT back (%d descriptors) after %.2f", f, ns/1e9; else printf "%.2f", ns/1e9}'
}

msh_true
sleep 1
base_rss=$(rss); base_fds=$(fds)
idle_login=$(login_ms)
base_rss=$(rss); base_fds=$(fds)
echo "mshd $("$bindir/mshd" --version 2>/dev/null | head -1), $(nproc) CPUs; $(grep -m1 -o 'open-file limit.*' "$dir/mshd.log" || echo 'open-file limit: not logged')"
echo "baseline: RSS ${base_rss} KiB, ${base_fds} descriptors; login (msh true, median of $logins): ${idle_login} ms"

hold "$seq" 1
r=$(rss); f=$(fds)
echo "$seq sessions opened one at a time: RSS +$(( r - base_rss )) KiB = $(( (r - base_rss) / seq )) KiB/session, +$(( f - base_fds )) descriptors"
secs=$(drop "$base_fds"); kill_sleepers; sleep 2
echo "  dropped: descriptors back to ${base_fds}: ${secs} s (now $(fds)); 2 s later RSS $(rss) KiB (+$(( $(rss) - base_rss )))"

hold "$seq" "$par" -
r=$(rss)
echo "$seq connections, authenticated, no channel ($par at a time): RSS +$(( r - base_rss )) KiB = $(( (r - base_rss) / seq )) KiB/connection"
drop "$base_fds" >/dev/null; sleep 2

base_rss2=$(rss)
hold "$n" "$par"
r=$(rss); f=$(fds)
echo "$n sessions opened $par at a time: RSS +$(( r - base_rss2 )) KiB = $(( (r - base_rss2) / n )) KiB/session, +$(( f - base_fds )) descriptors ($(sleepers | wc -w) sleep processes)"
busy_login=$(login_ms)
echo "  login with $n sessions open: ${busy_login} ms ($(awk -v a="$busy_login" -v b="$idle_login" 'BEGIN {printf "%.2f", a/b}')x the idle-server login)"
secs=$(drop "$base_fds")
echo "  all $n connections dropped: descriptors back to ${base_fds}: ${secs} s (now $(fds)); RSS $(rss) KiB (+$(( $(rss) - base_rss )) over baseline)"
sleep 2
echo "  2 s later: RSS $(rss) KiB (+$(( $(rss) - base_rss )) over baseline)"
sleep 8
echo "  10 s after the drop: RSS $(rss) KiB (+$(( $(rss) - base_rss )) over baseline); $(sleepers | wc -w) sleep processes carry on (as under sshd), killed now"
kill_sleepers
