#!/usr/bin/env bash
# Build and install LightFM 1.17 (the latest release) from its PyPI sdist, for
# `recfeat evaluate --peers lightfm`.
#
# Why: `pip install lightfm` fails. Its setup.py runs `__builtins__.__LIGHTFM_SETUP__ = True`
# so that `import lightfm` inside setup.py skips the compiled extension; under pip's PEP 517
# build (setuptools' build_meta execs setup.py outside __main__) `__builtins__` is a dict,
# so that line raises AttributeError before anything is built.
#
# What this does, and nothing else:
#   1. download lightfm-1.17.tar.gz from PyPI (`pip download` cannot: it needs the metadata,
#      which is the step that fails) and check its sha256;
#   2. replace that one line of setup.py with `import builtins; builtins.__LIGHTFM_SETUP__ =
#      True` (the same flag, set where `lightfm/__init__.py` looks it up). The build script
#      only: the library's code and its pre-generated Cython C sources are untouched;
#   3. `pip wheel` it (compiles the OpenMP extension with the system C compiler) and
#      `pip install` the wheel into the Python given (default: .venv/bin/python).
# Idempotent: does nothing when `import lightfm` already works in that Python.
#
# Usage: bash benchmarks/peers/install_lightfm.sh [PYTHON]
set -euo pipefail

PYTHON="${1:-${PYTHON:-.venv/bin/python}}"
VERSION=1.17
SHA256=2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8
URL="https://files.pythonhosted.org/packages/1f/96/5ec230f5c27811534af0faaa8525f11c1000ee1c24c8a82c0546d0724aea/lightfm-${VERSION}.tar.gz"

if "$PYTHON" -c "import lightfm, lightfm._lightfm_fast" 2>/dev/null; then
    echo "lightfm already installed in $PYTHON"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PYTHON" - "$URL" "$work/lightfm.tar.gz" "$SHA256" <<'EOF'
import hashlib, sys, urllib.request
url, dest, expected = sys.argv[1:]
urllib.request.urlretrieve(url, dest)
got = hashlib.sha256(open(dest, "rb").read()).hexdigest()
if got != expected:
    sys.exit(f"lightfm sdist sha256 {got} != expected {expected}; refusing to build it")
EOF

tar -xzf "$work/lightfm.tar.gz" -C "$work"
src="$work/lightfm-${VERSION}"
grep -qx '__builtins__.__LIGHTFM_SETUP__ = True' "$src/setup.py" || {
    echo "install_lightfm: setup.py no longer has the line this script patches" >&2
    exit 1
}
sed -i 's/^__builtins__\.__LIGHTFM_SETUP__ = True$/import builtins; builtins.__LIGHTFM_SETUP__ = True/' "$src/setup.py"

"$PYTHON" -m pip wheel -q --no-deps -w "$work/dist" "$src"
"$PYTHON" -m pip install -q "$work"/dist/lightfm-"${VERSION}"-*.whl
"$PYTHON" -c "import lightfm, lightfm._lightfm_fast; print('lightfm', lightfm.__version__, 'installed')"
