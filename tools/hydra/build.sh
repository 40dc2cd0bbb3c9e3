#!/usr/bin/env bash
# Builds Ory Hydra v2.3.0, the real OpenID provider of the SSO end-to-end
# test (internal/e2e/hydra_test.go), into <repo>/bin/hydra.
#
# Hydra lives in this separate module because it brings ~200 requirements
# that must not enter Keygate's go.mod. go.mod repeats Hydra's replace of
# gobuffalo/pop (a dependency's replaces are ignored), and the sqlite tag
# (cgo) is what makes the in-memory DSN work. A cold build takes ~2 min;
# later ones reuse the Go build cache and take seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/bin/hydra"
cd "$root/tools/hydra"
if [ -x "$out" ] && [ "$out" -nt go.mod ] && [ "$out" -nt go.sum ] && [ -z "${FORCE:-}" ]; then
  echo "hydra: $out is up to date (FORCE=1 rebuilds)"
  exit 0
fi
mkdir -p "$root/bin"
CGO_ENABLED=1 go build -trimpath -tags sqlite,sqlite_omit_load_extension -o "$out.tmp" github.com/ory/hydra/v2
mv "$out.tmp" "$out"
echo "hydra: built $out"
