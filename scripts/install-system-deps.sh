#!/usr/bin/env bash
# System packages Dry Lab needs beyond Python: bubblewrap (the grading sandbox), chromium and
# chromium-driver (the browser end-to-end test), and node/npm packages from deploy/package.json
# (configurable-http-proxy for JupyterHub). Called by `make test`, `make bench`, `make hub`
# and CI. Where it cannot install (not root, no apt), it says so and carries on: the tests
# that need the missing piece then fail or skip with that message.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
apt_pkgs=(bubblewrap chromium chromium-driver util-linux)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-system-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || { echo "install-system-deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
  else
    echo "install-system-deps: NOT installing ${missing[*]} (need root and apt-get);" \
         "sandboxed grading and the browser test need them" >&2
  fi
fi
# npm installs configurable-http-proxy (the hub's proxy) below. Debian's nodejs has no npm of
# its own; only ask apt for them when there is no npm at all (a node from elsewhere is fine).
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "install-system-deps: installing nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \
    || { echo "install-system-deps: apt-get install nodejs npm failed" >&2; exit 1; }
fi
if [ -f "$here/deploy/package.json" ]; then
  if command -v npm >/dev/null; then
    (cd "$here/deploy" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1 \
       || npm install --silent --no-audit --no-fund >/dev/null) \
      || { echo "install-system-deps: npm install in deploy/ failed" >&2; exit 1; }
  else
    echo "install-system-deps: npm not found; configurable-http-proxy not installed" >&2
  fi
fi
echo "install-system-deps: done"
