#!/usr/bin/env bash
# The main job, end to end on loopback: a fresh host key for mshd, a fresh user key for msh,
# both verifications shown, then a command runs. Everything lives under target/demo/ and
# mshd is stopped by its PID when the script exits.
set -euo pipefail
cd "$(dirname "$0")/.."

# mshd links libpam: its development files (libpam0g-dev) when missing.
scripts/deps.sh build
. scripts/lib.sh
msh_pick_target_dir
# The first build takes a minute or two on a small machine: say so, and let cargo show progress.
echo "demo: building msh, mshd and msh-keygen (cargo build; the first build takes a few minutes)" >&2
cargo build --workspace --bins
bin=$MSH_TARGET_DIR/debug
# Not under /tmp: /tmp is world-writable, and mshd's strict_modes (like sshd's StrictModes)
# rightly refuses an authorized_keys file below a world-writable directory.
demo=$MSH_TARGET_DIR/demo
rm -rf "$demo"
mkdir -p "$demo"
chmod 0755 "$demo"
user=$(id -un)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 2222)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A user key for $user (msh-keygen generate)"
"$bin/msh-keygen" generate -t ed25519 -f "$demo/id_ed25519" -N '' -C "$user@demo"
"$bin/msh-keygen" fingerprint "$demo/id_ed25519.pub"
cp "$demo/id_ed25519.pub" "$demo/authorized_keys"
chmod 0600 "$demo/authorized_keys"
: > "$demo/mshd.toml"

step "2. mshd on 127.0.0.1:$port (generates its ed25519 host key on first start)"
"$bin/mshd" --config "$demo/mshd.toml" --listen "127.0.0.1:$port" \
  --host-key "$demo/ssh_host_ed25519_key" --authorized-keys "$demo/authorized_keys" -v \
  >"$demo/mshd.log" 2>&1 &
mshd_pid=$!
trap 'kill "$mshd_pid" 2>/dev/null || true; wait "$mshd_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening" "$demo/mshd.log" 2>/dev/null && break
  kill -0 "$mshd_pid" 2>/dev/null || { cat "$demo/mshd.log"; exit 1; }
  sleep 0.1
done
grep -i "host key" "$demo/mshd.log" || true

msh=("$bin/msh" -p "$port" -i "$demo/id_ed25519" -o "UserKnownHostsFile=$demo/known_hosts")

step "3. First connection: the host key is unknown; accept-new records it (host verification)"
"${msh[@]}" -o StrictHostKeyChecking=accept-new "$user@127.0.0.1" true
echo "known_hosts now holds:"
cat "$demo/known_hosts"

step "4. Second connection: host key checked against known_hosts, user key checked by mshd"
"${msh[@]}" -v -o StrictHostKeyChecking=yes "$user@127.0.0.1" \
  'echo "hello from $(id -un) on $(hostname), exit status follows"; exit 3' \
  2> >(grep -iE "host key|known_hosts|authenticat" >&2) || echo "msh exited with $? (the remote exit status)"

step "5. mshd's view: the user-key check for each login"
grep -iE "accepted|rejected" "$demo/mshd.log" || true

step "6. A stranger's key is refused (exit 255, one line)"
"$bin/msh-keygen" generate -t ed25519 -f "$demo/stranger" -N '' -C stranger >/dev/null
"$bin/msh" -p "$port" -i "$demo/stranger" -o "UserKnownHostsFile=$demo/known_hosts" \
  -o StrictHostKeyChecking=yes -o BatchMode=yes "$user@127.0.0.1" true || echo "msh exited with $?"
