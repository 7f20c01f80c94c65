#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml): advisories, licences,
# bans and sources, without network access to any advisory database.
#
# Advisories come from a local copy of the RustSec database: $GOPLUG_ADVISORY_DB,
# else shared/advisory-db beside the repository (../shared/advisory-db).
# Without one, the script says so and still checks licences, bans and sources.
# RustSec misses the rust-yamux advisories: goplug-test/tests/supply_chain.rs
# holds those floors (it runs with the test suite).
#
# Installs the pinned cargo-deny from crates.io when it is missing (about 3
# minutes of build on 2 cores). Needs: cargo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CARGO_DENY_VERSION=0.20.2
# Where cargo-deny 0.20 looks for the database of db-urls' first (and
# only) entry, https://github.com/rustsec/advisory-db, under its db-path:
# "<last url segment>-<xxhash64 of the url>". Re-check after a version bump.
DB_DIR_NAME=advisory-db-3157b0e258782691

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    echo "==> installing cargo-deny $CARGO_DENY_VERSION"
    cargo install --locked "cargo-deny@$CARGO_DENY_VERSION"
fi

# `cargo deny --offline` runs `cargo metadata --offline`, which needs every
# locked crate (all platforms) in the local cargo cache: crates.io is
# reachable, so fetch them first.
if ! cargo fetch --locked --quiet; then
    echo "scripts/supply-chain.sh: 'cargo fetch' failed; trying with the local cache only" >&2
fi

db_src=${GOPLUG_ADVISORY_DB:-$root/../shared/advisory-db}
checks=(advisories bans licenses sources)
if [ -d "$db_src/crates" ]; then
    # cargo-deny wants a git checkout; give it the snapshot's files and a
    # FETCH_HEAD stamped now (we cannot fetch a newer one: no GitHub here).
    db_root=$(mktemp -d "${TMPDIR:-/tmp}/goplug-advisory-dbs.XXXXXX")
    trap 'rm -rf "$db_root"' EXIT
    mkdir -p "$db_root/$DB_DIR_NAME/.git"
    cp -R "$db_src/crates" "$db_root/$DB_DIR_NAME/crates"
    touch "$db_root/$DB_DIR_NAME/.git/FETCH_HEAD"
    export GOPLUG_ADVISORY_DB_ROOT="$db_root"
    snapshot=$(head -n 1 "$db_src/SNAPSHOT.txt" 2>/dev/null || echo "no SNAPSHOT.txt")
    echo "==> advisory database: $(cd "$db_src" && pwd) ($snapshot)"
else
    checks=(bans licenses sources)
    echo "################################################################"
    echo "# WARNING: no advisory database at $db_src"
    echo "# (set GOPLUG_ADVISORY_DB to a copy of rustsec/advisory-db)."
    echo "# SKIPPING the advisories check; licences, bans and sources only."
    echo "################################################################"
fi

echo "==> cargo deny --offline check ${checks[*]}"
cargo deny --offline --locked --color never check "${checks[@]}"
