#!/usr/bin/env bash
# The OpenTelemetry Collector for the otlp reporter's collector test
# (test/otlp/collector.test.ts, docs/reporters.md), built once from the Go
# module proxy with the Collector's builder (scripts/otelcol/builder.yaml).
#
#   scripts/otelcol.sh build   build it unless built; print binary=PATH
#   scripts/otelcol.sh path    print binary=PATH (exit 0), or "not built" (exit 3)
#
# Environment:
#   OTUS_OTELCOL_HOME  where it is built (default /var/tmp/otus-otelcol; must be ours, mode 0700)
#
# Needs Go 1.26 or newer (the Collector's go.mod says so; Debian 12's golang is 1.19).
# The first build downloads a few hundred modules and compiles for several minutes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
home="${OTUS_OTELCOL_HOME:-/var/tmp/otus-otelcol}"
version="v0.165.0"
out="$home/$version"
bin="$out/otelcol-otus-test"

die() { echo "otelcol.sh: $*" >&2; exit 1; }

own_dir() {
  local d="$1"
  if [ ! -e "$d" ]; then mkdir -p -m 0700 "$d"; return; fi
  [ -d "$d" ] || die "$d: not a directory"
  [ "$(stat -c %u "$d")" = "$(id -u)" ] || die "$d: owned by someone else; set OTUS_OTELCOL_HOME"
  [ $(( 0$(stat -c %a "$d") & 022 )) -eq 0 ] || die "$d: writable by others; set OTUS_OTELCOL_HOME"
}

case "${1:-}" in
  path)
    [ -d "$home" ] && own_dir "$home" # the binary runs from there: only if nobody else can write it
    if [ -x "$bin" ] && [ -f "$out/.complete" ]; then echo "binary=$bin"; else echo "not built"; exit 3; fi
    ;;
  build)
    if [ -x "$bin" ] && [ -f "$out/.complete" ]; then echo "binary=$bin"; exit 0; fi
    command -v go >/dev/null || die "go not found (Go 1.26 or newer builds the Collector)"
    minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
    [ -n "$minor" ] && [ "$minor" -ge 26 ] || die "$(go env GOVERSION): the Collector $version needs Go 1.26 or newer"
    own_dir "$home"
    exec 9>"$home/.build.lock"
    flock 9
    if [ ! -f "$out/.complete" ]; then
      sed "s#OUTPUT_PATH#$out#" "$here/otelcol/builder.yaml" >"$home/builder.yaml"
      GOFLAGS= go run "go.opentelemetry.io/collector/cmd/builder@$version" --config "$home/builder.yaml" >"$home/build.log" 2>&1 \
        || die "build failed: $home/build.log"
      touch "$out/.complete"
    fi
    echo "binary=$bin"
    ;;
  *)
    echo "usage: scripts/otelcol.sh build|path" >&2
    exit 2
    ;;
esac
