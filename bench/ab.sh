#!/usr/bin/env bash
# Two builds of mshd side by side: the same transfers through each, alternating which goes
# first from one trial to the next, to tell whether a change moved a figure by more than the
# run-to-run noise (bench/compare.sh compares against OpenSSH instead). Both daemons run
# with the same host key and config; msh and the OpenSSH clients are the same for both.
#   up     1 SIZE MiB stdin -> remote `cat >/dev/null` (msh)
#   down   remote `head -c` -> /dev/null (msh)
#   scpd   scp download of a SIZE MiB file (OpenSSH's scp, SFTP mode)
#   sftpd  sftp get of the same file
# Prints one line per trial: TEST A=MB/s B=MB/s.
# Usage: bench/ab.sh [-t TRIALS] [-s SIZE_MIB] [-x "TESTS"] BIN_DIR_A BIN_DIR_B
#   e.g. git stash; cargo build --release --bins; cp -r target/release /tmp/a; git stash pop;
#        cargo build --release --bins; bench/ab.sh /tmp/a target/release
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

trials=4 size=1024 tests="up down scpd sftpd"
while getopts "t:s:x:" o; do
  case $o in
    t) trials=$OPTARG ;;
    s) size=$OPTARG ;;
    x) tests=$OPTARG ;;
    *) echo "usage: $0 [-t TRIALS] [-s SIZE_MIB] [-x TESTS] BIN_DIR_A BIN_DIR_B" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { echo "usage: $0 [-t TRIALS] [-s SIZE_MIB] [-x TESTS] BIN_DIR_A BIN_DIR_B" >&2; exit 2; }
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd)
for b in "$A" "$B"; do
  [ -x "$b/mshd" ] && [ -x "$b/msh" ] || { echo "bench/ab.sh: no mshd/msh in $b" >&2; exit 2; }
done
need_tools ssh-keygen scp sftp python3

dir=$PWD/target/bench-ab
rm -rf "$dir"; mkdir -p "$dir"; chmod 0755 "$dir"
user=$(id -un)
pids=()
trap stop_pids EXIT
make_keys "$dir" id_ed25519 mshd_host_key
printf 'max_startups = "200:30:300"\n' > "$dir/mshd.toml"
pa=$(free_port); start_mshd "$A" "$dir" "$pa" mshd_host_key; pids+=("$mshd_pid")
pb=$(free_port); start_mshd "$B" "$dir" "$pb" mshd_host_key; pids+=("$mshd_pid")
wait_for_port "$pa"; wait_for_port "$pb"
: > "$dir/known_hosts"
for p in "$pa" "$pb"; do "$A/msh-keygen" scan "127.0.0.1:$p" >> "$dir/known_hosts" 2>/dev/null; done
truncate -s "$((size*1048576))" "$dir/src"
OSSH=(-F /dev/null -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts"
      -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o Ciphers=aes256-gcm@openssh.com)

msh_to() { "$A/msh" -p "$1" -i "$dir/id_ed25519" -o "UserKnownHostsFile=$dir/known_hosts" \
  -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
  "$user@127.0.0.1" "${@:2}"; }
now_ns() { date +%s%N; }
rate() { python3 -c "print('%.0f' % ($size*1048576/1e6/(($2-$1)/1e9)))"; }
up() { local t0; t0=$(now_ns); head -c "$((size*1048576))" /dev/zero | msh_to "$1" 'cat >/dev/null'
  rate "$t0" "$(now_ns)"; }
down() { local t0; t0=$(now_ns); msh_to "$1" "head -c $((size*1048576)) /dev/zero" >/dev/null
  rate "$t0" "$(now_ns)"; }
scpd() { local t0; t0=$(now_ns); scp -q "${OSSH[@]}" -P "$1" "$user@127.0.0.1:$dir/src" "$dir/dst"
  rate "$t0" "$(now_ns)"; rm -f "$dir/dst"; }
sftpd() { local t0; echo "get $dir/src $dir/dst" > "$dir/batch"; t0=$(now_ns)
  sftp -q -b "$dir/batch" "${OSSH[@]}" -P "$1" "$user@127.0.0.1" >/dev/null
  rate "$t0" "$(now_ns)"; rm -f "$dir/dst"; }

echo "A=$A  B=$B  ${size} MiB, $trials trials per test, alternating"
for t in $tests; do
  case $t in up|down|scpd|sftpd) ;; *) echo "bench/ab.sh: unknown test $t" >&2; exit 2 ;; esac
  for i in $(seq "$trials"); do
    if [ $((i % 2)) = 1 ]; then a=$($t "$pa"); b=$($t "$pb"); else b=$($t "$pb"); a=$($t "$pa"); fi
    echo "$t A=$a B=$b"
  done
done
