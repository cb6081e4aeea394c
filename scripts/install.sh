#!/usr/bin/env bash
# Installs a built Otus checkout as a service (systemd/README.md). Run as root
# from the checkout after scripts/setup.sh:
#   scripts/install.sh                 the tree in /usr/lib/otus, otus and otusctl in
#                                      /usr/local/bin, /etc/otus/otus.yml (if absent),
#                                      group otus, /etc/systemd/system/otus.service
#   scripts/install.sh --prefix DIR    the tree in DIR instead
#   scripts/install.sh --no-system     the tree only (no /usr/local/bin, /etc, group, systemd)
#   scripts/install.sh --uninstall     removes what it installed; keeps /etc/otus and group otus
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

prefix=/usr/lib/otus
system=true
uninstall=false
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift ;;
    --prefix=*) prefix=${1#--prefix=} ;;
    --no-system) system=false ;;
    --uninstall) uninstall=true ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$prefix" in
  /*) prefix=${prefix%/} ;;
  *) echo "install: --prefix must be an absolute path, got $prefix" >&2; exit 2 ;;
esac
[ -n "$prefix" ] || { echo "install: --prefix / is not a place for Otus" >&2; exit 2; }

root=false
[ "$(id -u)" = 0 ] && root=true
if $system && ! $root; then
  echo "install: run as root (or pass --no-system to install only the tree)" >&2
  exit 1
fi

# A file in the tree that says Otus put it there: nothing else is ever replaced or removed.
marker=.otus-install
bindir=/usr/local/bin
unit=/etc/systemd/system/otus.service
# Like sd_booted(3): is systemd the running init?
booted() { [ -d /run/systemd/system ]; }

remove_links() {
  for name in otus otusctl; do
    if [ -L "$bindir/$name" ] && [ "$(readlink "$bindir/$name")" = "$prefix/bin/$name" ]; then rm -f "$bindir/$name"; fi
  done
}

if $uninstall; then
  if $system; then
    if [ -f "$unit" ]; then
      if booted; then systemctl disable --now otus.service >/dev/null 2>&1 || true; fi
      rm -f "$unit"
      if booted; then systemctl daemon-reload; fi
    fi
    remove_links
  fi
  if [ -e "$prefix" ]; then
    [ -f "$prefix/$marker" ] || { echo "install: $prefix was not installed by this script; not removing it" >&2; exit 1; }
    rm -rf "$prefix"
  fi
  if $system; then echo "otus: uninstalled from $prefix; /etc/otus and group otus are kept"; else echo "otus: uninstalled from $prefix"; fi
  exit 0
fi

# --- what the tree is made of ---------------------------------------------
for f in dist/src/cli/otus.js native/build/Release/otus_native.node node_modules package.json package-lock.json; do
  [ -e "$f" ] || { echo "install: $src/$f is missing: build first (scripts/setup.sh)" >&2; exit 1; }
done
node=$(command -v node || true)
[ -n "$node" ] || { echo "install: node is not on PATH (scripts/setup.sh installs it)" >&2; exit 1; }
node=$(readlink -f "$node")
node_major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "install: Otus needs Node.js 20 or newer, $node is $("$node" --version)" >&2; exit 1; }
case "$node" in
  /home/*|/root/*|/run/user/*)
    echo "install: warning: $node is under a home directory, which the unit hides (ProtectHome=yes); install Node.js system-wide for the service" >&2 ;;
esac
if [ -e "$prefix" ] && [ ! -f "$prefix/$marker" ] && [ -n "$(ls -A "$prefix")" ]; then
  echo "install: $prefix exists and was not installed by this script; choose another --prefix" >&2
  exit 1
fi

# The new tree is built beside the old one and swapped in whole: a running
# daemon keeps the files it has open.
mkdir -p "$(dirname "$prefix")"
new=$(mktemp -d "$prefix.new.XXXXXX")
trap 'rm -rf "$new"' EXIT

mkdir -p "$new/dist" "$new/native/build/Release" "$new/bin" "$new/systemd"
# Compiled code only: tests, benchmarks and source maps (of sources not shipped) stay behind.
cp -r dist/src "$new/dist/src"
[ -d dist/plugins ] && cp -r dist/plugins "$new/dist/plugins"
find "$new/dist" -name '*.map' -delete
find "$new/dist" -name '*.test.js' -delete
cp native/build/Release/*.node "$new/native/build/Release/"
cp package.json package-lock.json "$new/"
cp -r configs "$new/configs"
cp systemd/otus.service systemd/README.md "$new/systemd/"
# Dependencies: a copy of the checkout's, pruned to production (no network needed).
mkdir "$new/node_modules"
cp -R node_modules/. "$new/node_modules/"
(cd "$new" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
find "$new/node_modules" -mindepth 1 -type d -empty -delete

wrapper() { # name, script under dist/src
  cat >"$new/bin/$1" <<EOF
#!/bin/sh
# Installed by scripts/install.sh: the Node.js found at install time runs $2.
exec "$node" "$prefix/dist/src/$2" "\$@"
EOF
  chmod 0755 "$new/bin/$1"
}
wrapper otus cli/otus.js
# dist/src/ctl/main.js is otusctl's entry point.
wrapper otusctl ctl/main.js
[ -f "$new/dist/src/ctl/main.js" ] || echo "install: warning: dist/src/ctl/main.js is not built; bin/otusctl will not run" >&2
echo "installed from $src ($(git -C "$src" describe --always --dirty 2>/dev/null || echo 'no git')) on $(date -u +%FT%TZ)" >"$new/$marker"

# Nobody but root writes here: 0755 directories, 0644 files (0755 if executable).
$root && chown -R root:root "$new"
chmod -R u=rwX,go=rX "$new"

if [ -e "$prefix" ]; then
  mv "$prefix" "$new.old"
  mv "$new" "$prefix"
  rm -rf "$new.old"
else
  mv "$new" "$prefix"
fi
trap - EXIT
echo "otus: installed in $prefix"

$system || exit 0

# --- the system: group, config, commands, unit ------------------------------
# The daemon runs as root with bounded capabilities (capture needs them); group
# otus owns /run/otus and the control socket, so its members can use otusctl.
getent group otus >/dev/null || groupadd --system otus

install -d -m 0755 -o root -g root /etc/otus
if [ ! -e /etc/otus/otus.yml ]; then
  if [ -f configs/otus.yml ]; then
    install -m 0640 -o root -g root configs/otus.yml /etc/otus/otus.yml
  else
    printf '# Otus global configuration (configs/README.md). Defaults everywhere.\notus: {}\n' >/etc/otus/otus.yml
    chown root:root /etc/otus/otus.yml
    chmod 0640 /etc/otus/otus.yml
  fi
  echo "otus: wrote /etc/otus/otus.yml"
else
  echo "otus: kept the existing /etc/otus/otus.yml"
fi

install -d -m 0755 "$bindir"
for name in otus otusctl; do ln -sfn "$prefix/bin/$name" "$bindir/$name"; done

sed "s#/usr/lib/otus#$prefix#g" systemd/otus.service >"$unit"
chown root:root "$unit"
chmod 0644 "$unit"
if booted; then
  systemctl daemon-reload
  echo "otus: unit installed; start it with: systemctl enable --now otus"
else
  echo "otus: unit installed in $unit, but systemd is not running here. Start the daemon by hand:"
  echo "  install -d -m 0750 -g otus /run/otus && otus daemon --config /etc/otus/otus.yml"
fi
