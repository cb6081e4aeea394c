#!/usr/bin/env bash
# Installs what Otus needs on Debian/Ubuntu, then builds it (C++ addon + TypeScript).
#   scripts/setup.sh          build and run dependencies
#   scripts/setup.sh --test   also what the test suite uses (tshark, tcpreplay, sipp, iproute2, systemd-analyze;
#                             Java and Maven for the Kafka broker of scripts/kafka.sh, tmux for
#                             otusctl top, promtool from Debian's prometheus package for deploy/ and the metrics tests,
#                             jq and openssl for the TLS tests and the command-signing example; the OpenTelemetry
#                             Collector of scripts/otelcol.sh when Go 1.26 or newer is installed)
# Run as root (or with sudo): it calls apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=false
[ "${1:-}" = "--test" ] && want_tests=true

# The Kafka reporter's client builds librdkafka from source (npm install, below), linked with these.
packages=(build-essential python3 libpcap-dev libxdp-dev libbpf-dev pkg-config ca-certificates
  libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev libsasl2-dev liblz4-dev)
$want_tests && packages+=(tshark tcpreplay sip-tester tcpdump iproute2 iputils-ping systemd default-jre-headless maven tmux prometheus jq openssl)

if command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; the default (no) is fine.
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  command -v node >/dev/null || apt-get install -y -qq nodejs npm >/dev/null
else
  echo "setup: no apt-get; install these yourself: ${packages[*]}" >&2
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Otus needs Node.js 20 or newer (found $(node --version 2>/dev/null || echo none))." >&2
  echo "       Debian 13 and NodeSource's node_20.x packages provide it." >&2
  exit 1
fi

# node-gyp builds against the installed headers instead of downloading them.
[ -f /usr/include/node/node_api.h ] && export npm_config_nodedir=/usr
# @confluentinc/kafka-javascript builds its bundled librdkafka; its default static
# build downloads the compression and TLS libraries, so link the system's instead.
# Dynamic linking also leaves librdkafka.so.1 in the package, which Otus' addon
# loads for the kafka reporter (native/kafka.cc). (Debian 12's own librdkafka,
# 2.0, lacks APIs the binding calls.)
export CKJS_LINKING=dynamic
npm install --no-audit --no-fund

# The OpenTelemetry Collector for test/otlp/collector.test.ts, built once into /var/tmp/otus-otelcol
# when Go 1.26 or newer is here; Debian 12's golang (1.19) is too old, and that test then skips, saying so.
if $want_tests; then
  scripts/otelcol.sh build || echo "setup: the OpenTelemetry Collector was not built; test/otlp/collector.test.ts will skip" >&2
fi
