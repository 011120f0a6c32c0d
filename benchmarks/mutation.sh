#!/usr/bin/env bash
# Mutation testing of activelearn with mutmut 3 (pip install -e '.[mutation]').
#
#   benchmarks/mutation.sh [REV [MUTANT_GLOB...]]
#
# REV: a git revision (default HEAD).  MUTANT_GLOBs select mutants by name (mutmut's
# "module.x_function__mutmut_N" / "module.xǁClassǁmethod__mutmut_N"); the default is
# the functions named in issue 13 (the Learning Loss target and ranking, the prototype
# head, rejection/confusion, the cluster ranking, Entropy-D); "all" runs every mutant
# of the files in [tool.mutmut] only_mutate (hours on a 2-core machine).
#
# Exports REV into a scratch folder ($MUT_DIR, default /tmp/activelearn-mutation-<rev>),
# puts this checkout's [tool.mutmut] section (files to mutate, test selection) into its
# pyproject.toml (test files that REV lacks are dropped from the selection), runs
# `mutmut run` there (mutants/ lives in the scratch folder, never in the checkout), and
# prints killed / total per mutated file.  The full list is in $MUT_DIR/results.txt.
# JOBS (default: the number of CPUs) sets mutmut's --max-children.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:-HEAD}"
shift || true
globs=("$@")
if [ ${#globs[@]} -eq 0 ]; then
  globs=(
    'activelearn.extensions.loss_prediction.x_ranking_loss__*'
    'activelearn.extensions.loss_prediction.x_per_sample_loss__*'
    'activelearn.extensions.loss_prediction.xǁLossPredictionModuleǁtraining_loss__*'
    'activelearn.extensions.loss_prediction.xǁLossPredictionModuleǁstep_loss__*'
    'activelearn.extensions.loss_prediction.xǁLossPredictionModuleǁranking_term__*'
    'activelearn.extensions.prototype.xǁPrototypeHeadǁhead_loss__*'
    'activelearn.extensions.prototype.xǁPrototypeHeadǁhead_sample_loss__*'
    'activelearn.extensions.prototype.xǁPrototypeHeadǁbuild__*'
    'activelearn.strategies.ncenet.x_rejection_score__*'
    'activelearn.strategies.ncenet.x_confusion_score__*'
    'activelearn.strategies.cluster.xǁClusterAnnotationǁ_choose__*'
    'activelearn.strategies.ibal.xǁEntropyDǁscore__*'
  )
elif [ "${globs[0]}" = all ]; then
  globs=()
fi
sha="$(git -C "$here" rev-parse --short "$rev")"
dir="${MUT_DIR:-/tmp/activelearn-mutation-$sha}"
rm -rf "$dir" && mkdir -p "$dir"
git -C "$here" archive "$rev" | tar -x -C "$dir"
python3 - "$here/pyproject.toml" "$dir/pyproject.toml" <<'PY'
import re, sys, pathlib
src, dst = map(pathlib.Path, sys.argv[1:])
section = re.search(r"^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", src.read_text(), re.S | re.M).group(0)
tests = re.findall(r'"(tests/[^"]+\.py)"', section)
for t in tests:
    if not (dst.parent / t).exists():
        section = section.replace(f'    "{t}",\n', "")
text = re.sub(r"^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", dst.read_text(), flags=re.S | re.M)
dst.write_text(text + "\n" + section)
PY
cd "$dir"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# datasets are looked up in ../shared relative to the checkout
[ -e ../shared ] || [ ! -e "$here/../shared" ] || ln -s "$here/../shared" ../shared 2>/dev/null || true
start=$(date +%s)
mutmut run --max-children "${JOBS:-$(nproc)}" "${globs[@]}" > run.log 2>&1 || { tail -30 run.log; exit 1; }
mutmut results --all true | grep -v ': not checked$' > results.txt || true
echo "rev $sha, $(( ($(date +%s) - start) / 60 )) min, results in $dir/results.txt"
python3 - results.txt <<'PY'
import collections, sys
rows = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    name, _, status = line.strip().rpartition(": ")
    if "__mutmut_" in name:
        rows[name.split("__mutmut_")[0].rsplit(".", 1)[0]][status] += 1
print(f"{'module':45s} {'killed':>7s} {'total':>6s} {'survived':>9s} other")
tk = tt = 0
for m, c in sorted(rows.items()):
    total = sum(c.values()); k = c["killed"] + c["timeout"]
    tk += k; tt += total
    other = ", ".join(f"{s} {n}" for s, n in c.items() if s not in ("killed", "timeout", "survived"))
    print(f"{m:45s} {k:7d} {total:6d} {c['survived']:9d} {other}")
print(f"{'all':45s} {tk:7d} {tt:6d}")
PY
