# Sourced by the scripts in this folder: make ./.venv (once) and install microprep into it
# (again whenever pyproject.toml changes). Needs only Python 3.11+ on PATH.
set -euo pipefail
extras="${MICROPREP_EXTRAS:-dev}"
py="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "setting up .venv with $py" >&2
    "$py" -m venv .venv
fi
stamp=".venv/.microprep-install-${extras//,/-}"
shopt -s nullglob
want="$(cat pyproject.toml setup.py plugins/*/pyproject.toml | sha256sum | cut -d' ' -f1)"
shopt -u nullglob
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing microprep[$extras] into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    plugins=()
    if [[ ",$extras," == *",train,"* ]]; then
        # the project's own trainer plugins (each its own package, entry point microprep.trainers)
        for dir in plugins/*/; do
            [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir")
        done
    fi
    .venv/bin/python -m pip install --quiet -e ".[$extras]" "${plugins[@]}" >&2
    echo "$want" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
