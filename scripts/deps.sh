#!/usr/bin/env bash
# Installs from Debian's packages what msh needs and this machine lacks; installs nothing when
# everything is there (safe to run again). Called by .ci/run, scripts/test.sh, scripts/demo.sh
# and scripts/install.sh.
#   build  what building needs: libpam0g-dev (mshd links libpam for use_pam).
#   test   that, and the tests' peers: OpenSSH client and server and sftp-server (interop),
#          tmux (interactive sessions), rsync, tar and git (copies through msh),
#          passwd/util-linux (the root-mode tests' throwaway users), man-db (gen-dist's
#          test), systemd (systemd-analyze verify), python3 with venv (the wire probes).
# On a system without apt-get it names what is missing and stops.
# Usage: scripts/deps.sh build|test
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
  build|test) ;;
  *) echo "usage: scripts/deps.sh build|test" >&2; exit 2 ;;
esac

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
# Linking -lpam needs the header-less dev symlink libpam.so, which only libpam0g-dev ships.
have_libpam_dev() {
  [ -f /usr/include/security/pam_appl.h ] || return 1
  compgen -G '/usr/lib/*/libpam.so' >/dev/null || compgen -G '/usr/lib*/libpam.so' >/dev/null
}
have_libpam_dev || missing+=(libpam0g-dev)
if [ "$mode" = test ]; then
  have ssh || missing+=(openssh-client)
  have ssh-keygen || missing+=(openssh-client)
  have ssh-agent || missing+=(openssh-client)
  have scp || missing+=(openssh-client)
  have sftp || missing+=(openssh-client)
  have sshd || missing+=(openssh-server)
  have tmux || missing+=(tmux)
  have useradd || missing+=(passwd)
  have runuser || missing+=(util-linux)
  have setpriv || missing+=(util-linux)
  have sha256sum || missing+=(coreutils)
  # msh's stdio tests copy trees with `rsync -e msh` / `-e ssh` and tar.
  have rsync || missing+=(rsync)
  # transport_tools clones over `GIT_SSH_COMMAND=msh`.
  have git || missing+=(git)
  have tar || missing+=(tar)
  # mshd's sftp subsystem tests run OpenSSH's sftp-server.
  [ -x /usr/lib/openssh/sftp-server ] || missing+=(openssh-sftp-server)
  # tools/gen-dist's test renders dist/man/* with `man -l`.
  have man || missing+=(man-db)
  have python3 || missing+=(python3)
  # operations.rs verifies dist/mshd.service (works without systemd as PID 1).
  have systemd-analyze || missing+=(systemd)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/deps.sh: missing Debian packages ${pkgs}and no apt-get here: install their equivalents (PAM development files: pam-devel / libpam-dev)" >&2
    exit 1
  fi
  echo "scripts/deps.sh: installing ${pkgs}from apt" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
