# Sourced by the ci/ scripts: find a Python 3.9+ and make (or reuse) a virtual environment; retry what reaches a
# package registry, so that a mirror in sync or a dropped connection costs a minute, not the run.
# Usage: bootstrap_venv DIR PACKAGES...   then "$VENV/bin/..." is ready.
#        apt_install WHO PACKAGE...      apt-get update (a failed index tolerated), then the install (retried).
# CI_TRIES (default 3) bounds every retry; CI_RETRY_WAIT (default 10) is the first wait in seconds, doubled after
# each failed try.
set -eu

find_python() {
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "no Python 3.9 or newer with the venv module found (set PYTHON=/path/to/python3)" >&2
    return 1
}

# retry WHAT COMMAND...: COMMAND until it succeeds, at most CI_TRIES times, each failure said in one line; the
# status is the last try's.
retry() {
    what=$1
    shift
    try=1
    wait=${CI_RETRY_WAIT:-10}
    while :; do
        "$@" && return 0
        status=$?
        if [ "$try" -ge "${CI_TRIES:-3}" ]; then
            echo "$what failed $try times (exit status $status)" >&2
            return "$status"
        fi
        echo "$what failed (exit status $status, try $try of ${CI_TRIES:-3}); trying again in $wait s" >&2
        sleep "$wait"
        try=$((try + 1))
        wait=$((wait * 2))
    done
}

bootstrap_venv() {
    VENV=$1
    shift
    stamp="$VENV/.installed"
    wanted="$*"
    if [ ! -x "$VENV/bin/python" ]; then
        python=$(find_python)
        "$python" -m venv "$VENV"
    fi
    # Reinstall only when the wanted packages or the project's metadata changed.
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        retry "pip install" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
        echo "$wanted" > "$stamp"
    fi
}

# apt_update_once: one apt-get update, its messages kept for the line apt_install prints.
apt_update_once() {
    apt_errors=$($APT_SUDO apt-get update -qq 2>&1)
}

# apt_install WHO PACKAGE...: the packages from apt, as root (with sudo when not root). An update that fails for
# one index (a mirror in sync: "File has unexpected size", "Hash Sum mismatch"; a repository unreachable) is said
# in one line and the install is tried anyway, since the packages are most often in the indexes that did update;
# only a failed install is fatal.
apt_install() {
    who=$1
    shift
    APT_SUDO=
    [ "$(id -u)" = 0 ] || APT_SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    apt_errors=
    # Its tries are quiet: what matters is the one line below, and whether the install then works.
    if ! retry "$who: apt-get update" apt_update_once 2>/dev/null; then
        first=$(printf '%s\n' "$apt_errors" | grep -m 1 '^[EW]:' || printf '%s\n' "$apt_errors" | tail -n 1)
        echo "$who: apt-get update failed ${CI_TRIES:-3} times, installing from the indexes that did update: $first" >&2
    fi
    retry "$who: apt-get install" $APT_SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
