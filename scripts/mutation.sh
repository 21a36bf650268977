#!/usr/bin/env bash
# Mutation testing of the packages that decide whether a subchannel leaks:
# subconn, trace, the policies (every package under balancer/), leaktest and
# the /proc reader it rests on (internal/procfs), and the soak's judge (the
# files of soak/ that decide PASS; see SOAK_JUDGE below). Each
# mutant (a flipped comparison, an inverted sign, a ++ turned --) is built into
# its package and the package's own tests are run against it; a mutant the
# tests do not notice "lived" and marks a gap in the tests.
#
#   scripts/mutation.sh                   every package above
#   scripts/mutation.sh subconn leaktest  only these package directories
#   scripts/mutation.sh --diff [REF]      only the non-test .go files changed
#                                         since the merge base with REF
#                                         (default main), committed or not
#
# It prints, per package, efficacy (killed / (killed + lived)) and mutator
# coverage ((killed + lived) / (killed + lived + not covered)), gremlins'
# own definitions, with the mutants named in scripts/mutation-allowlist.txt
# (equivalent mutants, each with the reason) left out of both and listed
# apart, then every mutant that lived with the allowlist line that would
# name it. It fails if subconn, trace, leaktest, balancer/guard,
# balancer/roundrobin or soak (its judge), mutated whole, falls below
# efficacy 95% or mutator coverage 90%, and, in --diff mode, if any mutant in
# a changed file lived.
#
# The tool is go-gremlins, pinned in tools/gremlins and built into .cache/bin.
# A full run is heavy (one package build and test run per mutant: about half
# an hour on two busy cores); it is not part of `go test ./...`.
#
# Environment:
#   MUTATION_WORKERS              parallel mutants (default 1)
#   MUTATION_TIMEOUT_COEFFICIENT  a mutant's build and tests may take this
#                                 many times gremlins' first (coverage) run
#                                 before it counts as timed out (default 5).
#                                 Timed-out mutants count in neither figure;
#                                 a mutant that hangs costs the whole timeout.
#   MUTATION_OUT                  where results and logs go (.cache/mutation)
#   MUTATION_FILES                non-test .go files, relative to the module
#                                 root and separated by spaces: only these
#                                 are mutated (a split of a package that a
#                                 full run does not fit), e.g.
#                                 MUTATION_FILES=soak/verdict.go
#                                 scripts/mutation.sh soak
#   MUTATION_RUN                  a go test -run pattern: each mutant is judged
#                                 by these tests only. soak/ has one by default
#                                 (SOAK_RUN below): its whole suite soaks for
#                                 minutes, so its judging files are mutated
#                                 against the tests that judge recorded
#                                 samples; other packages run all their tests.
#                                 A mutant only a soak would kill shows as
#                                 lived under a pattern: read it as a test gap.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

usage() { echo "usage: $0 [--diff [REF]] [PACKAGE_DIR...]" >&2; exit 2; }

diff_ref=""
dirs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --diff)
      diff_ref=main
      if [ $# -gt 1 ] && [[ "$2" != -* ]] && ! [ -d "$2" ]; then diff_ref=$2; shift; fi
      ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) [ -d "$1" ] || { echo "mutation: no directory $1" >&2; exit 2; }; dirs+=("${1%/}") ;;
  esac
  shift
done

# The default packages: subconn, trace, each policy under balancer/ (a new policy
# is picked up by itself), leaktest, internal/procfs, soak.
if [ ${#dirs[@]} -eq 0 ]; then
  dirs=(subconn trace)
  for d in balancer/*/; do
    d=${d%/}
    ls "$d"/*.go 2>/dev/null | grep -qv '_test\.go$' && dirs+=("$d")
  done
  dirs+=(leaktest internal/procfs soak)
fi

# The soak's judge: the files of soak/ that turn what a run recorded into its
# verdict, mutated when soak/ is named without MUTATION_FILES or --diff. The
# rest of soak/ drives the run (backends, faults, load) and is tested by soaks.
SOAK_JUDGE="verdict.go result.go closed.go limit.go inrun.go growth.go removals.go fdbooks.go"
# The tests that judge recorded values, one run of which takes seconds: every
# test of the judging files is named to match.
SOAK_RUN='Verdict|Baseline|RPCCheck|RemovalCheck|ClosedCheck|LimitCheck|Judge'

# A mutant is killed by its first failing test: stop there. Without it a
# mutant that breaks the /proc parser runs every leak check of the package
# to its deadline before it counts as killed (or, past the timeout, as timed
# out). Outcomes do not change: a mutant lives only if every test passes.
# go vet, which go test runs first, is left to CI: a mutant is judged by the
# tests alone.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-failfast -vet=off"

workers=${MUTATION_WORKERS:-1}
coef=${MUTATION_TIMEOUT_COEFFICIENT:-5}
out=${MUTATION_OUT:-$root/.cache/mutation}
bin="$root/.cache/bin"
allow="$root/scripts/mutation-allowlist.txt"
mkdir -p "$bin" "$out"

echo "mutation: building gremlins and the report into .cache/bin"
(cd tools/gremlins && go build -o "$bin/" github.com/go-gremlins/gremlins/cmd/gremlins ./mutationreport)

# sources lists a package's non-test Go files, relative to the package.
sources() { (cd "$1" && ls *.go 2>/dev/null | grep -v '_test\.go$' || true); }

changed=""
if [ -n "${MUTATION_FILES:-}" ]; then
  [ -z "$diff_ref" ] || { echo "mutation: MUTATION_FILES and --diff do not go together" >&2; exit 2; }
  for f in $MUTATION_FILES; do
    [ -f "$f" ] || { echo "mutation: MUTATION_FILES: no file $f" >&2; exit 2; }
  done
  changed=$(tr ' ' '\n' <<<"$MUTATION_FILES" | grep -v '^$' | sort -u)
fi
if [ -n "$diff_ref" ]; then
  if ! git rev-parse --verify --quiet "$diff_ref^{commit}" >/dev/null; then
    echo "mutation: --diff: no commit $diff_ref here; nothing to compare with" >&2
    exit 2
  fi
  changed=$( (git diff --name-only --merge-base "$diff_ref" -- '*.go'; git ls-files --others --exclude-standard -- '*.go') | grep -v '_test\.go$' | sort -u || true)
fi

# gremlins reads each source file when it reaches it, which can be an hour
# into a run: it runs on a copy of the working tree, so that edits made
# meanwhile neither change what is mutated nor shift the lines the report
# prints.
snap=$(mktemp -d "${TMPDIR:-/tmp}/mutation.XXXXXX")
trap 'rm -rf "$snap"' EXIT
tar -C "$root" --exclude=./.git --exclude=./.cache -cf - . | tar -C "$snap" -xf -

results=()
whole=()
start=$SECONDS
for d in "${dirs[@]}"; do
  # gremlins walks the directory tree: files in subdirectories belong to
  # packages of their own (each is named on its own if it is to be mutated)
  # and are left out.
  exclude=(-E '/')
  want=$changed
  if [ -z "$changed" ] && [ -z "$diff_ref" ] && [ "$d" = soak ]; then
    want=$(for f in $SOAK_JUDGE; do echo "soak/$f"; done)
  fi
  run=${MUTATION_RUN:-}
  if [ -z "$run" ] && [ "$d" = soak ]; then run=$SOAK_RUN; fi
  if [ -n "$want" ] || [ -n "$diff_ref" ]; then
    keep=0
    for f in $(sources "$d"); do
      if grep -qxF "$d/$f" <<<"$want"; then
        keep=1
      else
        exclude+=(-E "^${f//./\\.}\$")
      fi
    done
    if [ $keep -eq 0 ]; then
      echo "mutation: $d: none of its non-test Go files is to be mutated (${diff_ref:+changed since $diff_ref}${MUTATION_FILES:+MUTATION_FILES}); skipped"
      continue
    fi
    echo "mutation: $d: mutating $(grep "^$d/[^/]*$" <<<"$want" | tr '\n' ' ')"
  fi
  name=${d//\//_}
  echo "mutation: $d: gremlins (workers $workers, timeout coefficient $coef${run:+, tests -run=$run}); log in $out/$name.log"
  t0=$SECONDS
  rm -f "$out/$name.json" # gremlins writes none when there is no mutant: never report an older run's
  if ! (cd "$snap" && GOFLAGS="$GOFLAGS${run:+ -run=$run}" "$bin/gremlins" unleash --workers "$workers" --timeout-coefficient "$coef" \
      -S lt -o "$out/$name.json" "${exclude[@]}" "./$d") 2>&1 | tee "$out/$name.log"; then
    echo "mutation: gremlins failed on $d (see $out/$name.log)" >&2
    exit 1
  fi
  echo "mutation: $d took $((SECONDS - t0))s"
  if [ ! -f "$out/$name.json" ]; then
    echo "mutation: $d: gremlins found no mutant in the files mutated; nothing to report"
    continue
  fi
  results+=("$d=$out/$name.json:$snap/$d")
  # The thresholds hold for a package mutated whole (soak: its whole judge);
  # one part of a split can fall below them while the whole meets them.
  if [ -z "$changed" ] && [ -z "$diff_ref" ]; then whole+=("$d"); fi
done

if [ ${#results[@]} -eq 0 ]; then
  echo "mutation: nothing to mutate"
  exit 0
fi

report_flags=(-allow "$allow")
for m in subconn trace leaktest balancer/guard balancer/roundrobin soak; do
  for w in "${whole[@]}"; do
    if [ "$w" = "$m" ]; then report_flags+=(-min "$m=95/90"); fi
  done
done
[ -n "$diff_ref" ] && report_flags+=(-no-lived)
echo
echo "mutation: results ($((SECONDS - start))s in all)"
"$bin/mutationreport" "${report_flags[@]}" "${results[@]}"
