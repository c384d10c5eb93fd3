# Sourced by the scripts: picks a target dir that strict_modes can trust.
# mshd's strict_modes (like sshd's StrictModes) refuses authorized_keys files below a group- or
# world-writable directory, and the tests keep their files under the target dir. A checkout
# under /tmp (mode 1777) would make those tests fail for the right reason, so there we build
# in a private directory instead and say so.

# Prints the first group/world-writable directory among $1 and its ancestors, if any.
msh_unsafe_ancestor() {
  local d=$1 perm
  while :; do
    if [ -d "$d" ]; then
      perm=$(stat -c %a "$d")
      if (( 8#$perm & 8#022 )); then echo "$d"; return 0; fi
    fi
    [ "$d" = / ] && return 1
    d=$(dirname "$d")
  done
}

# Prints the first directory among $1 and its ancestors that other users cannot enter (no
# o+x), if any: root's tests run mshd and sessions as throwaway users, who must reach the
# binaries and the test files (a checkout in root's 0700 home would fail them).
msh_closed_ancestor() {
  local d=$1 perm
  while :; do
    if [ -d "$d" ]; then
      perm=$(stat -c %a "$d")
      if (( (8#$perm & 8#001) == 0 )); then echo "$d"; return 0; fi
    fi
    [ "$d" = / ] && return 1
    d=$(dirname "$d")
  done
}

# Exports CARGO_TARGET_DIR when the default ./target would sit below an unsafe directory, or
# (as root) below one the tests' throwaway users cannot enter.
msh_pick_target_dir() {
  local bad base why=
  if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    if bad=$(msh_unsafe_ancestor "$PWD"); then
      why="$PWD is below $bad (group/world-writable)"
    elif [ "$(id -u)" -eq 0 ] && bad=$(msh_closed_ancestor "$PWD"); then
      why="$PWD is below $bad, which the tests' throwaway users cannot enter"
    fi
  fi
  if [ -n "$why" ]; then
    if [ "$(id -u)" -eq 0 ]; then base=/var/lib/msh-build; else base=${XDG_CACHE_HOME:-$HOME/.cache}/msh-build; fi
    mkdir -p "$base" && chmod 0755 "$base"
    export CARGO_TARGET_DIR="$base/target-$(printf '%s' "$PWD" | sha256sum | cut -c1-12)"
    echo "note: $why; building in $CARGO_TARGET_DIR" >&2
  fi
  MSH_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  case $MSH_TARGET_DIR in /*) ;; *) MSH_TARGET_DIR=$PWD/$MSH_TARGET_DIR ;; esac
}
