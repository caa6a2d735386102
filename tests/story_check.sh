#!/usr/bin/env bash
# The quick start's story (scripts/story) runs to the end and shows what the
# README promises: the conflict and its resolution, the lead's budget, the
# service agent's redacted budget, fvd's files without the budget.
#   tests/story_check.sh BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(FV_STORY_CLEANUP=1 bash "$here/scripts/story" "$1" 2>&1)
rc=$?
echo "$out"
fail() { echo "story_check: $*" >&2; exit 1; }
[ $rc -eq 0 ] || fail "scripts/story exited $rc"
for want in "theirs: won  <- current" "kept theirs" "open conflicts left on Ana's phone: 0" \
            "budget: 120k EUR" "budget: [redacted]" "no '120k EUR' in any file" \
            "+86 138 0000 0000" "Pipeline now" "Done in"; do
  grep -qF -- "$want" <<<"$out" || fail "the output lacks: $want"
done
grep -qF "Acme Foods" <<<"$(sed -n '/Ben, the other rep/,/What fvd holds/p' <<<"$out")" &&
  fail "Ben sees Ana's customer"
echo "story_check: ok"
