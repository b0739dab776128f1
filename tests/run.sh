#!/bin/sh
# tests/run.sh - run cmocka test binaries and print the totals.
#
# Usage: tests/run.sh BINARY...
# Each binary's own output is shown; a binary that dies without a cmocka
# summary counts as one failure.  The last line is "N passed, N failed".
# Exit status 0 only when nothing failed.
passed=0
failed=0
failed_bins=""
for t in "$@"; do
	[ -x "$t" ] || { echo "tests/run.sh: $t is not built" >&2; failed=$((failed + 1)); continue; }
	echo "=== $t"
	out=$(mktemp)
	start=$(date +%s)
	"$t" >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(grep -o '\[  PASSED  \] [0-9]* test' "$out" | awk '{s+=$4} END {print s+0}')
	f=$(grep -o '\[  FAILED  \] [0-9]* test' "$out" | awk '{s+=$4} END {print s+0}')
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ $rc -ne 0 ]; then
		f=1
	fi
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -gt 0 ] && failed_bins="$failed_bins $t"
	echo "--- $t: $p passed, $f failed ($(( $(date +%s) - start ))s)"
	rm -f "$out"
done
echo
[ -n "$failed_bins" ] && echo "failed:$failed_bins"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
