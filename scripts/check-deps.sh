#!/usr/bin/env bash
# Dependency checks, run by scripts/test.sh (so by CI):
# - cargo-deny with deny.toml: every licence allowed, no crate in two versions (unless listed
#   in bans.skip with its reason), crates from crates.io only;
# - cargo-machete: no dependency declared but unused, in every workspace member (not
#   vendor/russh, upstream's, nor fuzz/, whose #[path] includes machete cannot follow).
# Installs both with `cargo install --locked` when missing (once; a few minutes on 2 cores).
# cargo-deny's `advisories` check fetches the RustSec database from GitHub at each run, which
# this project's machines cannot reach: run `cargo deny check advisories` where GitHub is
# reachable (README, Development).
# Usage: scripts/check-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo-deny cargo-machete; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-deps: installing $tool (cargo install --locked $tool)" >&2
    cargo install --locked --quiet "$tool" ||
      { echo "check-deps: FAILED: cannot install $tool from crates.io" >&2; exit 1; }
  fi
done

failed=()
if ! cargo deny check licenses bans sources; then
  failed+=("cargo deny check licenses bans sources: a licence deny.toml does not allow, or a \
crate in two versions (align our dependency with the version russh uses, or list the crate in \
deny.toml's bans.skip with the reason)")
fi
members_json=$(cargo metadata --no-deps --format-version 1)
mapfile -t members < <(python3 -c 'import json, os, sys
for p in json.load(sys.stdin)["packages"]: print(os.path.dirname(p["manifest_path"]))' \
  <<<"$members_json")
if ! cargo machete "${members[@]}"; then
  failed+=("cargo machete: a dependency named above is declared but never used; remove it \
from that Cargo.toml (a false positive goes in its [package.metadata.cargo-machete] ignored)")
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "check-deps: FAILED:" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "check-deps: ok (licences, duplicate versions, sources, unused dependencies)"
