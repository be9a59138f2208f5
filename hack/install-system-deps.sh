#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need (Prometheus; Lua for the
# Argo CD health checks; redis-server for the feedback service's shared store), once.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v lua5.4 >/dev/null \
  && command -v redis-server >/dev/null; then
  exit 0
fi
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus lua5.4 redis-server >/dev/null
# Debian's package starts a system service; the tests run their own servers.
$sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
$sudo pkill -x prometheus >/dev/null 2>&1 || true
$sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
$sudo service redis-server stop >/dev/null 2>&1 || true
command -v prometheus
