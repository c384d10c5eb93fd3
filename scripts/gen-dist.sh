#!/usr/bin/env bash
# Regenerates dist/ (man pages and bash/zsh/fish completions) from the clap definitions of
# msh, msh-keygen and mshd and from mshd's config key table (server/src/config/keys.rs).
# Run it after changing a flag, a help text or a config key, and commit dist/: the test
# tools/gen-dist/tests/dist_is_current.rs fails while dist/ is stale.
# Usage: scripts/gen-dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
msh_pick_target_dir
cargo run -q -p msh-gen-dist -- dist >/dev/null
echo "dist/ regenerated; review with git status dist/ and commit it"
