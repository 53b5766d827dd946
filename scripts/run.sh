#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv inside the repository (once), installs the
# pinned versions from constraints.txt, then runs what was asked:
#   bash scripts/run.sh demo          the main job on the embedded synthetic dataset
#   bash scripts/run.sh test [ARGS]   the test suite (pytest ARGS)
#   bash scripts/run.sh spd ARGS      any spd command
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"
venv="$repo/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating $venv"
    "$python" -m venv "$venv"
fi
# Reinstall only when the pins or the project metadata changed.
stamp="$venv/.spd-installed"
want="$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing spd and its pinned dependencies (torch is large: a minute or more)"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"
    echo "$want" > "$stamp"
fi

export HF_HUB_OFFLINE=1
# Idle OpenMP threads sleep instead of spinning: on a small shared machine spinning threads cost
# up to 5x the CPU per training step (spd's command line sets the same default for itself).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
cmd="${1:-demo}"
shift || true
case "$cmd" in
    demo) exec "$venv/bin/spd" demo "$@" ;;
    test)
        # The web page's test drives a real headless Chromium (Debian's package; Playwright cannot
        # download its own browser here).
        if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
                && [ -z "${SPD_CHROMIUM:-}" ]; then
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "[setup] installing Chromium from Debian's packages (for the browser test)"
                apt-get update -qq >/dev/null
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
            else
                echo "[setup] no Chromium found: install your system's chromium package (or set SPD_CHROMIUM)," \
                     "or the browser test fails" >&2
            fi
        fi
        # One worker process per core, each test file on one worker (a file's fixtures, such as a
        # trained run, are made once), each worker's torch on its share of the cores (conftest.py):
        # 414 s instead of 690 s on 2 cores.
        exec "$venv/bin/python" -m pytest -n auto --dist loadfile "$@" ;;
    spd)  exec "$venv/bin/spd" "$@" ;;
    *) echo "usage: bash scripts/run.sh {demo|test|spd} [ARGS...]" >&2; exit 2 ;;
esac
