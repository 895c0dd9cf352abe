#!/usr/bin/env bash
# Installs on Debian what the full test suite needs, so that `cargo test` runs
# every suite instead of reporting some as ignored:
#
#   what                              for              how
#   PostgreSQL server (initdb etc.)   every suite      apt-get install postgresql
#   PgBouncer                         tests/pgbouncer  apt-get install pgbouncer
#   Chromium and ChromeDriver         tests/browser    apt-get install chromium chromium-driver
#   axe-core (package-lock.json)      tests/browser    npm ci --prefix tests/browser
#   Citus (built from source)         tests/citus      ../shared/vendor/citus/install.sh,
#                                                      where that file exists
#
# Idempotent: installs only what is missing (apt-get update only then). Needs
# root for apt-get and Citus (uses sudo when run as another user). `.ci/run`
# calls it, so CI and a developer's machine install the same things.
#
#   scripts/install-test-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "install-test-deps: root (or sudo) is needed for: $*" >&2
        exit 1
    fi
}

# The places the tests look for each program (besides PATH).
found() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null \
            || [ -x "/usr/sbin/$name" ] || [ -x "/usr/bin/$name" ] || [ -x "/usr/lib/chromium/$name" ]; then
            return 0
        fi
    done
    return 1
}

packages=()
if ! found initdb && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    packages+=(postgresql)
fi
found pgbouncer || packages+=(pgbouncer)
if [ -z "${CHROME_BIN:-}" ] && ! found chromium chromium-browser google-chrome; then
    packages+=(chromium)
fi
found chromedriver || packages+=(chromium-driver)
axe=tests/browser/node_modules/axe-core/axe.min.js
if [ ! -f "$axe" ] && ! found npm; then
    packages+=(npm)
fi

if [ "${#packages[@]}" -gt 0 ]; then
    echo "== installing ${packages[*]} (apt-get)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if [ ! -f "$axe" ]; then
    echo "== installing axe-core (npm ci --prefix tests/browser)"
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

# Citus has no Debian package: its source and build script live in the shared
# folder beside the repository (a few minutes of build the first time; the
# script does nothing when this version is installed).
citus=../shared/vendor/citus/install.sh
if [ -f "$citus" ]; then
    echo "== citus ($citus)"
    as_root bash "$citus"
else
    echo "== citus: skipped ($citus not found)"
fi

echo "== test prerequisites installed"
