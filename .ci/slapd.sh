#!/usr/bin/env bash
# Installs OpenLDAP's server and tools (Debian packages slapd, ldap-utils) for the LDAP directory
# tests: crates/whereis/tests/directory.rs starts its own slapd on a loopback port in a temporary
# directory, and fails under CI when slapd is missing. Idempotent: does nothing when installed.
# Run: bash .ci/slapd.sh
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

if have slapd && have slapadd; then
    echo "slapd already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The package's own service is not needed (and is not started where services cannot run).
if ! $SUDO apt-get install -y -q --no-install-recommends slapd ldap-utils; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends slapd ldap-utils
fi
have slapd && have slapadd
echo "slapd installed"
