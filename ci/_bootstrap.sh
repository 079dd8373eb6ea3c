# Sourced by the ci/ scripts: find a Python 3.9+ and make (or reuse) a virtual environment.
# Usage: bootstrap_venv DIR PACKAGES...   then "$VENV/bin/..." is ready.
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
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
        echo "$wanted" > "$stamp"
    fi
}
