#!/usr/bin/env bash
# Installs msh, msh-keygen and mshd with their man pages and bash/zsh/fish completions.
#
# Usage: scripts/install.sh [--no-build BIN_DIR] [PREFIX]
#   PREFIX      default /usr/local: binaries in PREFIX/bin, man pages in
#               PREFIX/share/man/man{1,5,8}, completions in
#               PREFIX/share/bash-completion/completions, PREFIX/share/zsh/site-functions and
#               PREFIX/share/fish/vendor_completions.d.
#   --no-build BIN_DIR
#               copy msh, msh-keygen and mshd from BIN_DIR (e.g. target/release) instead of
#               building them with `cargo install --locked` (a release build: minutes).
#   DESTDIR     (environment) is prepended to every destination, for packagers.
#               The systemd units dist/mshd.service and dist/mshd.socket go to
#               PREFIX/lib/systemd/system, the service's ExecStart rewritten to
#               PREFIX/bin/mshd. mshd's PAM service dist/pam.d/msh goes to
#               DESTDIR/etc/pam.d/msh (PREFIX /usr or /usr/local, or DESTDIR set) unless
#               that file exists.
#
# The man pages and completions are the committed files under dist/ (scripts/gen-dist.sh
# regenerates them).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n 's/^# \{0,1\}//; 2,17p' "$0" >&2; exit "${1:-2}"; }
bin_dir=
prefix=/usr/local
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) [ $# -ge 2 ] || usage; bin_dir=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; usage ;;
    *) prefix=$1; shift ;;
  esac
done
case "$prefix" in
  /*) ;;
  *) echo "install.sh: PREFIX must be an absolute path, not $prefix" >&2; exit 2 ;;
esac
root=${DESTDIR:-}$prefix
bins=(msh msh-keygen mshd)

if [ -z "$bin_dir" ]; then
  # mshd links libpam: its development files (libpam0g-dev) when missing.
  scripts/deps.sh build
  # cargo install also writes its bookkeeping (.crates.toml, .crates2.json) under --root.
  cargo install --locked --path server --root "$root"
  cargo install --locked --path client --root "$root"
else
  for b in "${bins[@]}"; do
    [ -x "$bin_dir/$b" ] || { echo "install.sh: $bin_dir/$b: no such executable (build it first)" >&2; exit 1; }
  done
  for b in "${bins[@]}"; do install -D -m 0755 "$bin_dir/$b" "$root/bin/$b"; done
fi

shopt -s nullglob
for section in 1 5 8; do
  for page in dist/man/*."$section"; do
    install -D -m 0644 "$page" "$root/share/man/man$section/$(basename "$page")"
  done
done
for b in "${bins[@]}"; do
  install -D -m 0644 "dist/completions/bash/$b" "$root/share/bash-completion/completions/$b"
  install -D -m 0644 "dist/completions/zsh/_$b" "$root/share/zsh/site-functions/_$b"
  install -D -m 0644 "dist/completions/fish/$b.fish" "$root/share/fish/vendor_completions.d/$b.fish"
done

# The systemd unit (systemd also reads /usr/local/lib/systemd/system), started from where
# mshd was installed.
install -d -m 0755 "$root/lib/systemd/system"
sed "s#/usr/local/bin/mshd#$prefix/bin/mshd#g" dist/mshd.service >"$root/lib/systemd/system/mshd.service"
chmod 0644 "$root/lib/systemd/system/mshd.service"
install -m 0644 dist/mshd.socket "$root/lib/systemd/system/mshd.socket"

# mshd's PAM service (use_pam, pam_service = "msh"). /etc/pam.d is the system's, not under
# PREFIX: written for a system-wide install (PREFIX /usr or /usr/local) or a packager's
# DESTDIR only, and an existing file is the administrator's and is left alone.
pam_file=${DESTDIR:-}/etc/pam.d/msh
pam_note="PAM service in $pam_file"
if [ -z "${DESTDIR:-}" ] && [ "$prefix" != /usr ] && [ "$prefix" != /usr/local ]; then
  pam_note="PAM service not installed (PREFIX $prefix is not system-wide): copy dist/pam.d/msh to /etc/pam.d/msh"
elif [ -e "$pam_file" ]; then
  pam_note="$pam_file exists, left as it is (dist/pam.d/msh is the shipped version)"
else
  install -D -m 0644 dist/pam.d/msh "$pam_file"
fi
echo "installed msh, msh-keygen, mshd in $root/bin; man pages in $root/share/man; systemd unit in $root/lib/systemd/system; $pam_note"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not in PATH" ;;
esac
