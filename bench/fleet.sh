#!/usr/bin/env bash
# One command on a fleet of N hosts (default 50) on loopback, three ways:
#   msh --hosts h1,...,hN  against one mshd reached through N ssh_config aliases (one process)
#   N OpenSSH `ssh` started in the background by a shell loop, then `wait`, against sshd
#   N OpenSSH `ssh` one after another, against sshd
# and, to tell the client from the daemon, N background `ssh` against the same mshd.
# Each figure is the median of T trials (default 5), the ways taking turns at going first.
# Wall time is from start to the last exit; peak RSS is the largest sum, sampled every 5 ms,
# of the RSS of every process of the run's session (the shell loop's ssh processes together;
# msh alone); client CPU is the user + system time of the client processes (time(1)), the
# steadiest of the three on a busy machine: wall time here is mostly the daemons' and the
# remote shells' (root's ~/.bashrc is read by `bash -c` under either daemon). Every run must
# print N lines `ok` (FAIL otherwise). Prints the ratios msh / each other way (lower is better).
# Usage: bench/fleet.sh [-n HOSTS] [-t TRIALS] [-c COMMAND]   (release build)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

hosts=50 trials=5 remote='echo ok'
while getopts "n:t:c:" o; do
  case $o in
    n) hosts=$OPTARG ;;
    t) trials=$OPTARG ;;
    c) remote=$OPTARG ;;
    *) echo "usage: $0 [-n HOSTS] [-t TRIALS] [-c COMMAND]" >&2; exit 2 ;;
  esac
done

need_tools ssh sshd ssh-keygen python3

cargo build --release --bins -q
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
dir=$(fresh_dir fleet)
user=$(id -un)

pids=()
trap stop_pids EXIT

# Both daemons take all N connections at once from one address.
start_daemons "$bin" "$dir"

"$bin/msh-keygen" scan "127.0.0.1:$mport" > "$dir/known_hosts" 2>"$dir/scan.log" || {
  echo "bench: msh-keygen scan of mshd failed: $(cat "$dir/scan.log")" >&2; exit 1; }
ssh-keyscan -p "$sport" -t ed25519 127.0.0.1 >> "$dir/known_hosts" 2>/dev/null

# N aliases of the one mshd: each host of the list is resolved, connected, verified and
# authenticated on its own, as N real hosts would be.
list=""
: > "$dir/fleet_config"
for i in $(seq 1 "$hosts"); do
  printf 'Host h%d\n  HostName 127.0.0.1\n  Port %d\n' "$i" "$mport" >> "$dir/fleet_config"
  list+="${list:+,}h$i"
done
MSH=("$bin/msh" -F "$dir/fleet_config" -l "$user" -i "$dir/id_ed25519"
     -o "UserKnownHostsFile=$dir/known_hosts" -o GlobalKnownHostsFile=/dev/null
     -o StrictHostKeyChecking=yes)
OSSH=(ssh -F /dev/null -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
      -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes
      -o IdentitiesOnly=yes -o Ciphers=aes256-gcm@openssh.com -l "$user")
export BENCH_HOSTS=$hosts BENCH_REMOTE=$remote BENCH_SPORT=$sport BENCH_MPORT=$mport
export BENCH_OSSH="${OSSH[*]}"
"${MSH[@]}" --hosts h1 true 2>"$dir/check.log" || {
  echo "bench: msh --hosts -> mshd does not work: $(cat "$dir/check.log")" >&2; exit 1; }
"${OSSH[@]}" -p "$sport" 127.0.0.1 true || { echo "bench: ssh -> sshd does not work" >&2; exit 1; }

# measure NAME COMMAND...: runs it in a session of its own, prints "wall_ms peak_kib cpu_s"
# (or FAIL when it did not print $hosts lines ending in "ok").
measure() {
  local name=$1; shift
  local out=$dir/out-$name
  python3 - "$dir/rss-$name" <<'PY' &
import os, sys, time
# Samples the session of the process that starts next (our parent's child, below): sum of
# VmRSS over every process whose session id is the one recorded in the file.
path = sys.argv[1]
while not os.path.exists(path) or not open(path).read().strip():
    time.sleep(0.001)
pid = open(path).read().split()[0]
with open(f"/proc/{pid}/stat") as f:
    sid = int(f.read().rsplit(")", 1)[1].split()[3])
peak = 0
while True:
    total, alive = 0, False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:
                continue
            alive = True
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    peak = max(peak, total)
    if not alive and os.path.exists(path + ".done"):
        break
    time.sleep(0.005)
open(path + ".peak", "w").write(str(peak))
PY
  local sampler=$!
  local t0; t0=$(date +%s%N)
  # setsid: the way's processes form one session the sampler can find. time(1) adds up the
  # CPU time of every process the way waited for (msh, or each ssh and the loop's shell).
  setsid -w /usr/bin/time -f '%U %S' -o "$dir/cpu-$name" \
    bash -c 'echo $$ > "$0"; "$@"' "$dir/rss-$name" "$@" > "$out"
  local t1; t1=$(date +%s%N)
  local cpu; cpu=$(python3 -c 'import sys; print("%.2f" % sum(map(float, open(sys.argv[1]).read().split()[-2:])))' "$dir/cpu-$name")
  touch "$dir/rss-$name.done"
  wait "$sampler"
  local peak; peak=$(cat "$dir/rss-$name.peak")
  rm -f "$dir/rss-$name" "$dir/rss-$name.done" "$dir/rss-$name.peak"
  local oks; oks=$(grep -c 'ok$' "$out" || true)
  if [ "$oks" -ne "$hosts" ]; then echo FAIL; return; fi
  echo "$(( (t1 - t0) / 1000000 )) $peak $cpu"
}
# The ways, run by `measure` through `bash -c`, which sees exported variables and
# functions only: the option arrays go as words (no spaces in these paths).
export list dir
export MSH_ARGS="${MSH[*]}"
way_msh() { $MSH_ARGS --hosts "$list" "$BENCH_REMOTE" 2>>"$dir/msh-stderr.log"; }
way_bg() { local i; for i in $(seq 1 "$BENCH_HOSTS"); do $BENCH_OSSH -p "$1" 127.0.0.1 "$BENCH_REMOTE" & done; wait; }
way_seq() { local i; for i in $(seq 1 "$BENCH_HOSTS"); do $BENCH_OSSH -p "$BENCH_SPORT" 127.0.0.1 "$BENCH_REMOTE"; done; }
export -f way_msh way_bg way_seq

ways=(msh bg_sshd seq_sshd bg_mshd)
declare -A wall rss cpu
for w in "${ways[@]}"; do wall[$w]=""; rss[$w]=""; cpu[$w]=""; done
for t in $(seq 1 "$trials"); do
  # Rotate which way goes first.
  n=${#ways[@]}
  for k in $(seq 0 $((n - 1))); do
    w=${ways[$(( (k + t) % n ))]}
    case $w in
      msh) r=$(measure msh bash -c way_msh) ;;
      bg_sshd) r=$(measure bg_sshd bash -c 'way_bg "$BENCH_SPORT"') ;;
      seq_sshd) r=$(measure seq_sshd bash -c way_seq) ;;
      bg_mshd) r=$(measure bg_mshd bash -c 'way_bg "$BENCH_MPORT"') ;;
    esac
    echo "trial $t $w: $r" >> "$dir/samples.txt"
    [ "$r" != FAIL ] || { echo "bench: $w did not print $hosts ok lines; see $dir/out-$w" >&2; exit 1; }
    read -r rw rr rc <<< "$r"
    wall[$w]+="$rw "; rss[$w]+="$rr "; cpu[$w]+="$rc "
  done
done

median() { python3 -c 'import statistics,sys; v=statistics.median(float(x) for x in sys.argv[1:]); print("%.0f" % v if v >= 100 else "%.2f" % v)' "$@"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
echo "fleet of $hosts hosts on loopback, command '$remote', median of $trials trials (samples: $dir/samples.txt)"
row() { printf '%-40s %10s %14s %15s\n' "$@"; }
row way "wall (ms)" "peak RSS (KiB)" "client CPU (s)"
declare -A mw mr mc
for w in "${ways[@]}"; do
  # shellcheck disable=SC2086
  mw[$w]=$(median ${wall[$w]}); mr[$w]=$(median ${rss[$w]}); mc[$w]=$(median ${cpu[$w]})
done
row "msh --hosts (one process) -> mshd" "${mw[msh]}" "${mr[msh]}" "${mc[msh]}"
row "$hosts ssh in the background -> sshd" "${mw[bg_sshd]}" "${mr[bg_sshd]}" "${mc[bg_sshd]}"
row "$hosts ssh one after another -> sshd" "${mw[seq_sshd]}" "${mr[seq_sshd]}" "${mc[seq_sshd]}"
row "$hosts ssh in the background -> mshd" "${mw[bg_mshd]}" "${mr[bg_mshd]}" "${mc[bg_mshd]}"
for other in bg_sshd seq_sshd bg_mshd; do
  echo "ratio msh --hosts / $other: wall $(ratio "${mw[msh]}" "${mw[$other]}"), peak RSS $(ratio "${mr[msh]}" "${mr[$other]}"), client CPU $(ratio "${mc[msh]}" "${mc[$other]}")"
done
