#!/usr/bin/env bash
# The minipach demo: a real DataLad dataset, two chained pipelines, a schedule, the reuse of identical
# content, the provenance of a result (`minipach explain`), `datalad rerun` reproducing it on a fresh clone,
# and a forecast of what a change will cost.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
minipach() { node "$here/bin/minipach.js" "$@"; }
work="${MINIPACH_DEMO_DIR:-$(mktemp -d /tmp/minipach-demo-XXXXXX)}"
ds="$work/study"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
export DATALAD_LOG_LEVEL=warning

step "1. A DataLad dataset with raw data for four subjects (sub-02 and sub-03 have identical recordings)"
datalad create "$ds" >/dev/null
cd "$ds"
mkdir -p raw/sub-01 raw/sub-02 raw/sub-03 raw/sub-04
printf 'the quick brown fox\njumps over the lazy dog\n' > raw/sub-01/session.txt
printf 'a b c\nd e f\ng h i\n' > raw/sub-02/session.txt
printf 'a b c\nd e f\ng h i\n' > raw/sub-03/session.txt
printf 'one line only\n' > raw/sub-04/session.txt
mkdir -p wordcount summary
cp "$here/specs/examples/wordcount/spec.yml" wordcount/spec.yml
cp "$here/specs/examples/summary/spec.yml" summary/spec.yml
datalad save -m "raw data and two pipelines" >/dev/null
find raw wordcount summary -type f -o -type l | sort

step "2. minipach plan: what would run, and why (changes nothing)"
minipach plan

step "3. minipach schedule: compute, link the duplicate, run the chained pipeline, commit results"
minipach schedule -j 2

step "4. The results"
for f in wordcount/*/counts.txt; do echo "$f: $(cat "$f")"; done
echo "summary/table.txt:"; sed 's/^/  /' summary/table.txt
echo
echo "sub-02 and sub-03 share one annex key (computed once, linked once):"
git ls-tree -r HEAD wordcount/sub-02 wordcount/sub-03 | grep counts.txt | awk '{print "  " $4 " -> " $3}'
for p in wordcount/sub-02/counts.txt wordcount/sub-03/counts.txt; do echo "  $p: $(readlink "$p" | sed 's|.*/||')"; done

step "5. Provenance: each computed datum is one commit holding a datalad run record"
git log --format='  %h %s' | head -8
sha=$(git log -1 --format=%H --grep='^\[DATALAD RUNCMD\] minipach wordcount/sub-01')
echo; echo "The record of wordcount/sub-01 ($sha):"
git log -1 --format=%B "$sha" | sed -n '/=== Do not change/,/\^\^\^/p' | python3 -c '
import json, sys
body = sys.stdin.read().split("\n", 1)[1].rsplit("\n^^^", 1)[0]
r = json.loads(body)
print("  cmd:     ", r["cmd"])
print("  inputs:  ", r["inputs"], " outputs:", r["outputs"])
m = r["minipach"]
print("  datum key:", m["key"][:16] + "...", " input keys:", [f for i in m["inputs"] for f in i["files"]])'
echo; echo "The reuse of wordcount/sub-03 is recorded too:"
git log -1 --format=%B --grep='^\[minipach\] link' | sed -n '3,4p'

step "6. minipach explain: how exactly was summary/table.txt made? (from git alone, down to raw data)"
minipach explain summary/table.txt | grep -v '^ *command:' | cut -c1-150 | head -40
echo "  ... (--json for all of it, --prov for W3C PROV-JSON)"

step "7. A second schedule does nothing"
minipach schedule

step "8. datalad rerun on a fresh clone, without minipach, reproduces the same key"
datalad clone "$ds" "$work/clone" >/dev/null
cd "$work/clone"
datalad rerun --onto= "$sha" >/dev/null 2>&1
orig=$(git ls-tree "$sha" wordcount/sub-01/counts.txt | awk '{print $3}')
again=$(git ls-tree HEAD wordcount/sub-01/counts.txt | awk '{print $3}')
echo "  original: $(git cat-file -p "$orig" | sed 's|.*/||')"
echo "  rerun:    $(git cat-file -p "$again" | sed 's|.*/||')"
[ "$orig" = "$again" ] && echo "  identical." || { echo "  DIFFERENT"; exit 1; }

step "9. One changed file recomputes exactly its datum and what reads it; plan forecasts the cost first"
cd "$ds"
# Annexed files are read-only symlinks: replace the file (or `datalad unlock` it) rather than append in place.
rm raw/sub-04/session.txt && printf 'one line only\nand a new recording\n' > raw/sub-04/session.txt
datalad save -m "more data for sub-04" >/dev/null
minipach plan --cpu-hour-cost 0.05 | sed -n '/^forecast/,$p'
minipach schedule
echo; minipach cost wordcount
git -C "$ds" fsck --no-progress --no-dangling && git -C "$ds" annex fsck --fast --quiet && echo "git fsck and git annex fsck: clean"

step "10. A pipeline in a container: its image is a file of the dataset, recorded as datalad containers-run does"
# This machine kind needs podman set up as containers/README.md says; a usual podman needs none of it.
export CONTAINERS_CONF="$here/containers/containers.conf" CONTAINERS_STORAGE_CONF="$here/containers/storage.conf"
"$here/containers/build.sh" busybox "$work/busybox.oci" >/dev/null
minipach containers add busybox --from "$work/busybox.oci"
mkdir -p shout && cp "$here/specs/examples/shout/spec.yml" shout/spec.yml
datalad save -m "a pipeline in a container" >/dev/null
minipach schedule
echo "shout/sub-01/session.txt: $(cat shout/sub-01/session.txt | head -1)"
echo "shout/sub-01/ran-in: $(cat shout/sub-01/ran-in)"
git log -1 --format=%B --grep='^\[DATALAD RUNCMD\] minipach shout/sub-01' | sed -n '/=== Do not change/,/\^\^\^/p' | python3 -c '
import json, sys
body = sys.stdin.read().split("\n", 1)[1].rsplit("\n^^^", 1)[0]
r = json.loads(body)
print("  extra_inputs:", r["extra_inputs"])
print("  cmd:         ", r["cmd"][:150] + " ...")'
echo; echo "The demo dataset is in $ds"
