#!/bin/sh
# mk/valgrind-check.sh - the verdict of `make valgrind` from valgrind's logs.
#
# Usage: mk/valgrind-check.sh DIR
# DIR holds one log per broker process (valgrind --log-file=DIR/%p.log).
# Fails (exit 1) on any memory error (invalid read or write, use of an
# uninitialised value, bad free...) and on any "definitely lost" leak whose
# stack names the plugin (mqim_plugin.so, mqim__*, mqim_*); definite leaks
# inside Mosquitto or its libraries alone are listed but do not fail the
# run.  Prints one line per log with a problem and a summary line.
dir=${1:?usage: mk/valgrind-check.sh DIR}
logs=$(ls "$dir"/*.log 2>/dev/null)
[ -n "$logs" ] || { echo "valgrind-check: no logs in $dir" >&2; exit 1; }
bad=0
n=0
for f in $logs; do
	n=$((n + 1))
	# Records are separated by blank "==PID== " lines.
	awk -v file="$f" '
	function flush() {
		if (rec == "") return
		if (rec ~ /definitely lost in loss record/) {
			if (rec ~ /mqim/) { ours++; print file ": definite leak in the plugin:\n" rec }
			else theirs++
		} else if (rec ~ /(Invalid (read|write|free)|uninitialised|Mismatched free|overlap|Syscall param|Jump to the invalid)/) {
			errors++; print file ": memory error:\n" rec
		}
		rec = ""
	}
	{ line = $0; sub(/^==[0-9]+== ?/, "", line)
	  if (line == "") { flush(); next }
	  rec = rec line "\n" }
	END { flush()
	      if (theirs) print file ": " theirs " definite leak(s) outside the plugin (Mosquitto or its libraries)"
	      exit (ours || errors) ? 1 : 0 }' "$f" || bad=$((bad + 1))
done
echo "valgrind-check: $n broker run(s), $bad with errors or plugin leaks"
[ "$bad" -eq 0 ]
