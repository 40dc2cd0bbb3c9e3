#!/usr/bin/env bash
# Builds oauth2-proxy v7.15.6, the comparison of bench/load.sh (the tool a
# deployment would otherwise put in front of an LLM proxy), into
# <repo>/bin/oauth2-proxy.
#
# It lives in this separate module so its requirements (cloud SDKs, Redis,
# ...) never enter Keygate's go.mod. The binary is cached: it is rebuilt
# only when go.mod or go.sum change, or with FORCE=1. A cold build takes
# a few minutes on two cores; later ones reuse the Go build cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/bin/oauth2-proxy"
cd "$root/tools/oauth2-proxy"
if [ -x "$out" ] && [ "$out" -nt go.mod ] && [ "$out" -nt go.sum ] && [ -z "${FORCE:-}" ]; then
	echo "oauth2-proxy: $out is up to date (FORCE=1 rebuilds)" >&2
	exit 0
fi
mkdir -p "$root/bin"
CGO_ENABLED=0 go build -trimpath -o "$out.tmp" github.com/oauth2-proxy/oauth2-proxy/v7
mv "$out.tmp" "$out"
echo "oauth2-proxy: built $out" >&2
