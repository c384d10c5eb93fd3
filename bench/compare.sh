#!/usr/bin/env bash
# Side-by-side benchmark on loopback: msh -> mshd against OpenSSH ssh -> sshd, in one run.
# Prints each figure for both and the ratio msh/OpenSSH (lower is better for time and memory,
# higher is better for throughput); for the scp/sftp rows both columns are OpenSSH's client and
# the ratio is through mshd / through sshd.
#   connect+auth+exec `true` latency: median of N runs (default 30)
#   throughput of SIZE MiB (default 1024) upload (stdin -> remote cat >/dev/null) and download
#     (remote head -> us), msh -> mshd against ssh -> sshd
#   round trip of CAT MiB (default 1024) through remote `cat`, sha256 of what came back checked
#   scp and sftp (OpenSSH's clients; scp in SFTP mode) of a SIZE file both ways, through mshd
#     against through sshd, the same sftp-server behind both daemons
#   SIZE MiB each way through a local forward (-L) to bench/tunnel.py on the daemon's side
#   connect+auth+exec `true` latency through one jump host (-J; the daemon is its own bastion),
#     and that figure against OpenSSH's direct connection
#   the client's CPU time (user + system) per GiB for the upload and download, with /usr/bin/time
#   memory per idle session: (RSS with K idle sessions - RSS with none) / K (default K=50)
#   then bench/fleet.sh -t 3: msh --hosts on 50 hosts against 50 ssh in the background and in turn
# Every throughput figure is the median of T trials (default 5) per side, the two sides
# alternating which goes first from one trial to the next (so neither always meets a colder
# page cache or a busier CPU), after one untimed warm-up transfer through each daemon; every
# sample is kept in target/bench/samples.txt.
# Every OpenSSH client uses aes256-gcm@openssh.com, the cipher msh and mshd settle on, so both
# sides run the same cipher class; the negotiated ciphers are printed first.
# Usage: bench/compare.sh [-n RUNS] [-k IDLE_SESSIONS] [-s SIZE_MIB] [-c CAT_MIB] [-t TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

runs=30 idle=50 size_mib=1024 cat_mib=1024 trials=5
while getopts "n:k:s:c:t:" o; do
  case $o in
    n) runs=$OPTARG ;;
    k) idle=$OPTARG ;;
    s) size_mib=$OPTARG ;;
    c) cat_mib=$OPTARG ;;
    t) trials=$OPTARG ;;
    *) echo "usage: $0 [-n RUNS] [-k IDLE_SESSIONS] [-s SIZE_MIB] [-c CAT_MIB] [-t TRIALS]" >&2; exit 2 ;;
  esac
done

need_tools ssh sshd ssh-keygen scp sftp sha256sum python3

cargo build --release --bins -q
# CARGO_TARGET_DIR lets the release build live apart from a shared debug target dir.
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
dir=$PWD/target/bench
rm -rf "$dir"; mkdir -p "$dir"; chmod 0755 "$dir"
user=$(id -un)

pids=()
trap stop_pids EXIT

# mshd and sshd, sshd with its own config and nothing from /etc/ssh. The idle-session figure
# opens $idle connections at once from one address: start_daemons raises the
# unauthenticated-connection limits on both daemons alike.
start_daemons "$bin" "$dir" "MaxSessions 100" \
  "Subsystem sftp $(for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server; do [ -x "$p" ] && echo "$p" && break; done)"

# known_hosts for both, so both clients run with strict checking and no prompt
"$bin/msh-keygen" scan "127.0.0.1:$mport" > "$dir/known_hosts" 2>"$dir/scan.log" || {
  echo "bench: msh-keygen scan of mshd failed: $(cat "$dir/scan.log"); see $dir/mshd.log" >&2; exit 1; }
ssh-keyscan -p "$sport" -t ed25519 127.0.0.1 >> "$dir/known_hosts" 2>/dev/null

MSH_OPTS=("$bin/msh" -p "$mport" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
     -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes)
MSH=("${MSH_OPTS[@]}" "$user@127.0.0.1")
CIPHER=aes256-gcm@openssh.com
# Options every OpenSSH client (ssh, scp, sftp) gets, whichever daemon it talks to.
OSSH=(-F /dev/null -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
      -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes
      -o IdentitiesOnly=yes -o "Ciphers=$CIPHER")
SSH_OPTS=(ssh "${OSSH[@]}" -p "$sport")
SSH=("${SSH_OPTS[@]}" "$user@127.0.0.1")
# A jump host gets only the config file from the command line (ssh and msh alike), so the
# -J rows carry their settings in one config file per client.
common_cfg="  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  User $user"
# The target is the bastion's own daemon, the bastion named by an alias: ssh refuses a jump
# whose host string, port and user equal the target's as a loop.
bastion_block="Host jbastion
  HostName 127.0.0.1"
printf '%s\nHost *\n%s\n' "$bastion_block" "$common_cfg" > "$dir/msh_config"
printf '%s\nHost *\n%s\n  Ciphers %s\n' "$bastion_block" "$common_cfg" "$CIPHER" > "$dir/ssh_config"
MSHJ=("$bin/msh" -F "$dir/msh_config" -J "jbastion:$mport" -p "$mport" 127.0.0.1)
SSHJ=(ssh -F "$dir/ssh_config" -J "jbastion:$sport" -p "$sport" 127.0.0.1)
"${MSH[@]}" true || { echo "bench: msh -> mshd does not work; see $dir/mshd.log" >&2; exit 1; }
"${SSH[@]}" true || { echo "bench: ssh -> sshd does not work; see $dir/sshd.log" >&2; exit 1; }
"${MSHJ[@]}" true || { echo "bench: msh -J through mshd does not work; see $dir/mshd.log" >&2; exit 1; }
"${SSHJ[@]}" true || { echo "bench: ssh -J through sshd does not work; see $dir/sshd.log" >&2; exit 1; }

now_ns() { date +%s%N; }
median_ms() { python3 -c 'import sys,statistics; v=[int(x) for x in sys.stdin.read().split()]; print("%.1f" % (statistics.median(v)/1e6))'; }
latency() {
  local out=()
  for _ in $(seq 1 "$runs"); do
    local t0; t0=$(now_ns)
    "$@" true || { echo "bench: failed: $*" >&2; echo FAIL; return; }
    out+=($(( $(now_ns) - t0 )))
  done
  printf '%s\n' "${out[@]}" | median_ms
}
mbps() { python3 -c "print('%.0f' % ($size_mib*1048576/1e6/(($2-$1)/1e9)))"; }
# The client's own CPU time (user + system) of every trial is appended to $dir/cpu-$1: on a
# shared machine it is steadier than the wall clock.
timed() { # $1 = label, rest = command
  local label=$1; shift
  if [ -x /usr/bin/time ]; then /usr/bin/time -a -f '%U %S' -o "$dir/cpu-$label" "$@"
  else "$@"; fi
}
cpu_per_gib() { # $1 = label: the median over the trials
  [ -s "$dir/cpu-$1" ] || { echo n/a; return; }
  python3 - "$dir/cpu-$1" "$size_mib" <<'PY'
import statistics, sys
runs = [sum(map(float, l.split()[-2:])) for l in open(sys.argv[1]) if len(l.split()) >= 2]
print("%.2f" % (statistics.median(runs) / (int(sys.argv[2]) / 1024)) if runs else "n/a")
PY
}
# paired LABEL A B: evaluates the commands A and B $trials times each, alternating which runs
# first, and prints "median-of-A median-of-B" (FAIL if any sample failed).
paired() {
  local label=$1 a=$2 b=$3 va=() vb=() i
  for i in $(seq 1 "$trials"); do
    if (( i % 2 )); then va+=("$(eval "$a")"); vb+=("$(eval "$b")")
    else vb+=("$(eval "$b")"); va+=("$(eval "$a")"); fi
  done
  echo "$label: msh/mshd ${va[*]} | OpenSSH ${vb[*]}" >> "$dir/samples.txt"
  echo "$(printf '%s\n' "${va[@]}" | median) $(printf '%s\n' "${vb[@]}" | median)"
}
median() { python3 -c '
import statistics, sys
v = sys.stdin.read().split()
print("FAIL" if not v or "FAIL" in v else "%.0f" % statistics.median(float(x) for x in v))'; }
upload() { # $1 = label
  local label=$1; shift
  local t0; t0=$(now_ns)
  head -c "$((size_mib*1048576))" /dev/zero | timed "up-$label" "$@" 'cat >/dev/null'
  mbps "$t0" "$(now_ns)"
}
download() {
  local label=$1; shift
  local t0; t0=$(now_ns)
  timed "down-$label" "$@" "head -c $((size_mib*1048576)) /dev/zero" >/dev/null
  mbps "$t0" "$(now_ns)"
}
roundtrip() { # prints MB/s, or FAIL when the bytes that came back differ
  local t0 got; t0=$(now_ns)
  got=$(head -c "$((cat_mib*1048576))" /dev/zero | "$@" cat | sha256sum | cut -d' ' -f1)
  local t1; t1=$(now_ns)
  if [ "$got" = "$cat_sha" ]; then
    python3 -c "print('%.0f' % ($cat_mib*1048576/1e6/(($t1-$t0)/1e9)))"
  else
    echo FAIL
  fi
}
# OpenSSH scp/sftp against the daemon on port $2; $1 = up or down. The source is sparse, so
# reading it costs nothing; the destination is written (page cache) and then removed.
scp_run() {
  local src dst t0
  if [ "$1" = up ]; then src=$dir/xfer-src; dst=$user@127.0.0.1:$dir/xfer-dst-$2
  else src=$user@127.0.0.1:$dir/xfer-src; dst=$dir/xfer-dst-$2; fi
  t0=$(now_ns)
  scp -q "${OSSH[@]}" -P "$2" "$src" "$dst"
  mbps "$t0" "$(now_ns)"
  rm -f "$dir/xfer-dst-$2"
}
sftp_run() {
  local t0
  if [ "$1" = up ]; then echo "put $dir/xfer-src $dir/xfer-dst-$2" > "$dir/batch-$2"
  else echo "get $dir/xfer-src $dir/xfer-dst-$2" > "$dir/batch-$2"; fi
  t0=$(now_ns)
  sftp -q "${OSSH[@]}" -P "$2" -b "$dir/batch-$2" "$user@127.0.0.1" >/dev/null
  mbps "$t0" "$(now_ns)"
  rm -f "$dir/xfer-dst-$2"
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
ratio() { python3 - "$1" "$2" <<'PY'
import sys
try:
    a, b = float(sys.argv[1]), float(sys.argv[2])
    print("%.2f" % (a / b) if b else "n/a")
except ValueError:
    print("n/a")
PY
}

# Negotiated ciphers (server->client direction; msh logs both directions as one name).
mc=$("${MSH[@]}" -vvv true 2>&1 | sed -n 's/.*cipher: Name("\([^"]*\)").*/\1/p' | head -1)
sc=$("${SSH[@]}" -v true 2>&1 | sed -n 's/.*server->client cipher: \([^ ]*\).*/\1/p' | head -1)
mdc=$(ssh "${OSSH[@]}" -v -p "$mport" "$user@127.0.0.1" true 2>&1 |
  sed -n 's/.*server->client cipher: \([^ ]*\).*/\1/p' | head -1)
echo "msh vs OpenSSH on loopback ($(ssh -V 2>&1)); runs=$runs idle=$idle size=${size_mib}MiB cat=${cat_mib}MiB"
echo "ciphers: msh->mshd ${mc:-?}; ssh->sshd ${sc:-?}; scp/sftp->mshd ${mdc:-?}, ->sshd ${sc:-?}"
printf '%-44s %12s %12s %8s\n' "figure" "msh/mshd" "OpenSSH" "ratio"
row() { printf '%-44s %12s %12s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
ml=$(latency "${MSH[@]}"); sl=$(latency "${SSH[@]}")
row "connect+auth+exec median (ms)" "$ml" "$sl"
# Warm-up, untimed: a daemon's first transfer pays for page faults and allocator growth that
# every later one finds done.
for c in MSH SSH; do
  eval "head -c 67108864 /dev/zero | \"\${$c[@]}\" 'cat >/dev/null'"
  eval "\"\${$c[@]}\" 'head -c 67108864 /dev/zero' >/dev/null"
done
: > "$dir/samples.txt"
rm -f "$dir"/cpu-*
read -r mu su < <(paired upload 'upload msh "${MSH[@]}"' 'upload ssh "${SSH[@]}"')
row "upload ${size_mib} MiB (MB/s)" "$mu" "$su"
read -r md sd < <(paired download 'download msh "${MSH[@]}"' 'download ssh "${SSH[@]}"')
row "download ${size_mib} MiB (MB/s)" "$md" "$sd"
row "client CPU per GiB uploaded (s)" "$(cpu_per_gib up-msh)" "$(cpu_per_gib up-ssh)"
row "client CPU per GiB downloaded (s)" "$(cpu_per_gib down-msh)" "$(cpu_per_gib down-ssh)"
cat_sha=$(head -c "$((cat_mib*1048576))" /dev/zero | sha256sum | cut -d' ' -f1)
read -r mr sr < <(paired cat 'roundtrip "${MSH[@]}"' 'roundtrip "${SSH[@]}"')
row "cat round trip ${cat_mib} MiB, sha256 ok (MB/s)" "$mr" "$sr"
truncate -s "$((size_mib*1048576))" "$dir/xfer-src"
for tool in scp sftp; do
  for way in up down; do
    read -r m s < <(paired "$tool-$way" "${tool}_run $way $mport" "${tool}_run $way $sport")
    row "$tool $way ${size_mib} MiB, mshd vs sshd (MB/s)" "$m" "$s"
  done
done
# Through a local forward (-L): bench/tunnel.py serves on the daemon's side and is reached
# through each client's forwarded port; both clients run -N, each stopped by its PID.
tport=$(free_port)
python3 bench/tunnel.py serve "$tport" & pids+=($!)
wait_for_port "$tport"
mlp=$(free_port); slp=$(free_port)
"${MSH_OPTS[@]}" -N -L "$mlp:127.0.0.1:$tport" "$user@127.0.0.1" & pids+=($!)
"${SSH_OPTS[@]}" -N -L "$slp:127.0.0.1:$tport" "$user@127.0.0.1" & pids+=($!)
wait_for_port "$mlp"; wait_for_port "$slp"
for way in up down; do
  read -r m s < <(paired "tunnel-$way" "python3 bench/tunnel.py $way $mlp $size_mib" \
    "python3 bench/tunnel.py $way $slp $size_mib")
  row "-L tunnel $way ${size_mib} MiB (MB/s)" "$m" "$s"
done
mj=$(latency "${MSHJ[@]}"); sj=$(latency "${SSHJ[@]}")
row "-J one bastion, exec median (ms)" "$mj" "$sj"
row "msh -J against ssh direct (ms)" "$mj" "$sl"
mm=$(idle_per_session "$mshd_pid" "${MSH[@]}"); sm=$(idle_per_session "$sshd_pid" "${SSH[@]}")
row "daemon RSS per idle session (KiB)" "$mm" "$sm"
echo "throughput rows: median of $trials trials per side; every sample in $dir/samples.txt"

# Fleet mode (msh --hosts with 50 entries against 50 background and 50 sequential ssh):
# bench/fleet.sh starts its own daemons, so the ones above are stopped first.
stop_pids; pids=()
echo
bash bench/fleet.sh -t 3
