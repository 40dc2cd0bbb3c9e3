#!/usr/bin/env bash
# Builds Ory Hydra v2.3.0, the real OpenID provider of the SSO end-to-end
# tests (internal/e2e/hydra_test.go), and puts it at <repo>/bin/hydra.
#
# Hydra lives in this separate module because it brings ~200 requirements
# that must not enter Keygate's go.mod. go.mod repeats Hydra's replace of
# gobuffalo/pop (a dependency's replaces are ignored), and the sqlite tag
# (cgo) is what makes the in-memory DSN work.
#
# A cold build takes minutes (~2 on an idle 2-core machine, ~10 on a busy
# CI runner), so the binary is kept outside the clone, in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/keygate/hydra-<hash>
# where <hash> is the first 16 hex digits of SHA-256(go.mod || go.sum):
# every clone and worktree on the machine (and every CI run that keeps
# $HOME/.cache) reuses it, and a change of Hydra's version or requirements
# builds a new one. The tests find that file by themselves too.
# FORCE=1 rebuilds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/bin/hydra"
cd "$root/tools/hydra"
hash="$(cat go.mod go.sum | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/keygate"
cached="$cache/hydra-$hash"
if [ -n "${FORCE:-}" ] || [ ! -x "$cached" ]; then
  mkdir -p "$cache"
  echo "hydra: building $cached (takes minutes the first time)"
  CGO_ENABLED=1 go build -trimpath -tags sqlite,sqlite_omit_load_extension -o "$cached.tmp.$$" github.com/ory/hydra/v2
  mv -f "$cached.tmp.$$" "$cached"
else
  echo "hydra: using the cached build $cached (FORCE=1 rebuilds)"
fi
mkdir -p "$root/bin"
if [ -x "$out" ] && cmp -s "$cached" "$out"; then
  echo "hydra: $out is up to date"
  exit 0
fi
cp -f "$cached" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "hydra: copied to $out"
