#!/usr/bin/env bash
# `make lock`: re-resolve the lock files from pyproject.toml's ranges, deliberately (commit them after the suite
# passes on them). Exact versions with sha256 hashes of every file of each release, for this project's machine
# (Linux x86_64, CPython 3.11); torch itself is left out (its build is chosen by `make`'s TORCH), its
# dependencies are in. Each lock is complete (every package of the tree): `make` installs it with --no-deps, so
# pip resolves nothing, and `pip check` then confirms the set is consistent.
# run.lock: the package (`make run`); dev.lock: + [dev] (`make test`, CI); bench.lock: + [dev,bench] (`make bench`). run.lock and bench.lock are resolved within dev.lock's versions, so the three agree.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
TORCH="${TORCH:-torch==2.13.0}"
PYTHON="${PYTHON:-python3}"
tool=$(mktemp -d)
pins=requirements/.pins-of-dev.txt  # a fixed name: the lock files' "via -c" notes name it
trap 'rm -rf "$tool" "$pins"' EXIT
"$PYTHON" -m venv "$tool/venv"
"$tool/venv/bin/python" -m pip install --quiet "uv==$UV_VERSION"
echo "${TORCH%% *}" > "$tool/torch.txt"
# the CPU torch wheel this machine kind keeps on disk: resolving against it keeps CUDA-only packages out
links=()
for folder in ${PIP_FIND_LINKS:-}; do links+=(--find-links "$folder"); done
compile() {  # OUTPUT EXTRA... : resolve pyproject.toml with those extras
    local out=$1; shift
    "$tool/venv/bin/uv" pip compile pyproject.toml "$@" "${links[@]}" -c "$tool/torch.txt" \
        --generate-hashes --no-emit-package torch --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
        --custom-compile-command "make lock" --quiet -o "$out"
}
compile requirements/dev.lock --extra dev
grep -E '^[A-Za-z0-9_.-]+==' requirements/dev.lock | sed 's/ .*//' > "$pins"
compile requirements/run.lock -c "$pins"
compile requirements/bench.lock --extra dev --extra bench -c "$pins"
echo "wrote requirements/run.lock, dev.lock, bench.lock ($(grep -cE '^[A-Za-z0-9_.-]+==' requirements/dev.lock) packages in dev)"
