#!/usr/bin/env bash
# Installs checkov (pinned) in a virtualenv of its own under the cache, so its many
# pins never meet the operator's, and prints the path of its executable.
set -euo pipefail
version=3.3.30
cache_root="${MODELLOOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelloop}"
venv="$cache_root/checkov/$version"
if [[ ! -f "$venv/.complete" ]]; then
  echo "installing checkov $version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "checkov==$version" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/checkov"
