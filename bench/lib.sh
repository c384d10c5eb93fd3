# Helpers shared by the bench/*.sh scripts: source it after `cd` to the checkout's root.

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

# Exits naming the packages to install unless every tool named is on PATH or in /usr/sbin.
need_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || {
      echo "bench: $t missing: apt-get install openssh-client openssh-server python3" >&2; exit 1; }
  done
}

# Stops (by PID) and reaps every process in the array `pids`: `pids=(); trap stop_pids EXIT`.
stop_pids() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

# Writes $1/sshd_config: OpenSSH's sshd on 127.0.0.1:$2 with host key $1/sshd_host_key and
# $1/authorized_keys, keys only, nothing from /etc/ssh, up to 200 unauthenticated connections;
# each further argument is one more line.
write_sshd_config() {
  local dir=$1 port=$2; shift 2
  {
    cat <<CFG
Port $port
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
LogLevel ERROR
CFG
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
  } > "$dir/sshd_config"
}

# Starts sshd in the foreground mode (-D -e) in the background with $1/sshd_config, logging
# to $1/sshd.log; sets sshd_pid (then wait_for_port). As root, creates its privilege
# separation directory /run/sshd first.
start_sshd() {
  local sshd
  sshd=$(command -v sshd || echo /usr/sbin/sshd)
  [ "$(id -u)" -ne 0 ] || { mkdir -p /run/sshd; chmod 0755 /run/sshd; }
  "$sshd" -D -e -f "$1/sshd_config" 2>"$1/sshd.log" &
  sshd_pid=$!
}

# mshd ($1/mshd) and OpenSSH's sshd side by side in $2, on free ports of 127.0.0.1: the client
# key $2/id_ed25519 authorized for both, host keys $2/mshd_host_key (mshd generates one only
# at its default path) and $2/sshd_host_key, and both daemons taking up to 200 connections at
# once from one address. Further arguments are extra sshd_config lines. Sets mport, sport,
# mshd_pid and sshd_pid, adds both to `pids`, and returns once both listen.
start_daemons() {
  local bin=$1 dir=$2; shift 2
  make_keys "$dir" id_ed25519 mshd_host_key
  ssh-keygen -q -t ed25519 -N '' -f "$dir/sshd_host_key" -C sshd-host
  mport=$(free_port)
  printf 'max_startups = "200:30:300"\nper_source_max_startups = 0\n' > "$dir/mshd.toml"
  start_mshd "$bin" "$dir" "$mport" mshd_host_key
  pids+=("$mshd_pid")
  sport=$(free_port)
  write_sshd_config "$dir" "$sport" "$@"
  start_sshd "$dir"
  pids+=("$sshd_pid")
  wait_for_port "$mport"; wait_for_port "$sport"
}
