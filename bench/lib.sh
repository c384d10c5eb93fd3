# Helpers shared by bench/sessions.sh and bench/stdin_flood_rss.sh: source it after `cd` to the
# checkout's root. (bench/compare.sh still has its own freeport/waitport.)

# An empty target/bench-$1, mode 0755, emptied first; prints its path.
fresh_dir() {
  local d=$PWD/target/bench-$1
  rm -rf "$d"; mkdir -p "$d"; chmod 0755 "$d"
  echo "$d"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for a listener on 127.0.0.1:$1; fails naming the port if none appears.
wait_for_port() {
  for _ in $(seq 1 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listening on port $1" >&2
  return 1
}

# In directory $1: the client key pair $1/$2 (comment `bench`), authorized in
# $1/authorized_keys (mode 0600), and the host key pair $1/$3 (comment `mshd-host`).
make_keys() {
  ssh-keygen -q -t ed25519 -N '' -f "$1/$2" -C bench
  cp "$1/$2.pub" "$1/authorized_keys"; chmod 0600 "$1/authorized_keys"
  ssh-keygen -q -t ed25519 -N '' -f "$1/$3" -C mshd-host
}

# Starts $1/mshd in the background with $2/mshd.toml on 127.0.0.1:$3, host key $2/$4 and
# $2/authorized_keys, logging to $2/mshd.log; sets mshd_pid (then wait_for_port $3).
start_mshd() {
  "$1/mshd" --config "$2/mshd.toml" --listen "127.0.0.1:$3" --host-key "$2/$4" \
    --authorized-keys "$2/authorized_keys" >"$2/mshd.log" 2>&1 &
  mshd_pid=$!
}
