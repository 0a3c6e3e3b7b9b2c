#!/usr/bin/env bash
# Installs what sqlguard needs on Debian, skipping what is already there.
#   scripts/install-deps.sh          # runtime: MariaDB server and client, zstd, xz
#   scripts/install-deps.sh --test   # plus everything the test suite runs against (`age`: the
#                                    # encryption tests decrypt with the stock age CLI)
# Python tools of the tests go to a virtual environment at a fixed path (the system's pip may be
# externally managed): ~/.local/share/sqlguard-test/venv, where the tests look for them.
set -euo pipefail

want_test=
[ "${1:-}" = --test ] && want_test=1

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo

pkgs=(mariadb-server mariadb-client zstd xz-utils procps)
if [ -n "$want_test" ]; then
  pkgs+=(time curl prometheus-pushgateway prometheus chromium chromium-driver systemd man-db groff-base zsh fish stunnel4 openssl
    mmdebstrap podman buildah python3-venv age)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -n "$want_test" ]; then
  # The S3-compatible test server, from crates.io (0.15+ needs a newer rustc). Built once, then
  # kept in cargo's bin directory.
  if ! command -v s3s-fs >/dev/null && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
    echo "installing s3s-fs (S3-compatible test server; about 2 minutes)"
    cargo install s3s-fs --version 0.14.1 --features binary --locked -q
  fi
  # moto's S3 server: the only one here that lists in-progress multipart uploads.
  if ! command -v moto_server >/dev/null; then
    echo "installing moto (S3 server for the incomplete-upload tests)"
    python3 -m pip install -q --disable-pip-version-check 'moto[server]'
    # Under pyenv the new console script needs a shim.
    if command -v pyenv >/dev/null; then pyenv rehash; fi
    command -v moto_server >/dev/null || { echo "moto_server is not on PATH after installing moto" >&2; exit 1; }
  fi
  # kubernetes-validate: the Kubernetes schemas, offline, for the contrib manifests.
  venv=$HOME/.local/share/sqlguard-test/venv
  if ! command -v kubernetes-validate >/dev/null && [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "installing kubernetes-validate (into $venv)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate
    "$venv/bin/kubernetes-validate" --version >/dev/null
  fi
fi
