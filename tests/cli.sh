#!/bin/bash
# The command line: help everywhere, usage errors, exit codes, info output.
. "$(dirname "$0")/lib.sh"

expect() { # expect CODE CMD...: runs CMD, checks its exit status
	local want=$1 rc=0
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$TMP/out" "$TMP/err"; fail "'$*' exited $rc, expected $want"; }
}

one_line_error() { # the error is one line that starts with "wtgfs: "
	[ "$(grep -c . "$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "expected a one-line error"; }
	grep -q '^wtgfs: ' "$TMP/err" || fail "error does not start with 'wtgfs: '"
}

expect 0 "$WTGFS" --help
grep -q '^usage: wtgfs COMMAND' "$TMP/out" || fail "--help shows no usage"
expect 0 "$WTGFS" --version
expect 2 "$WTGFS"
expect 2 "$WTGFS" frobnicate
one_line_error
for cmd in info mount umount init log verify; do
	expect 0 "$WTGFS" "$cmd" --help
	grep -q "^usage: wtgfs $cmd" "$TMP/out" || fail "'$cmd --help' shows no usage"
	expect 0 "$WTGFS" help "$cmd"
	grep -q "^usage: wtgfs $cmd" "$TMP/out" || fail "'help $cmd' shows no usage"
done
expect 2 "$WTGFS" info
expect 2 "$WTGFS" info --bogus x
expect 2 "$WTGFS" mount only-one-arg
expect 2 "$WTGFS" mount -o cache=lots a b
expect 2 "$WTGFS" info /nonexistent.wim
one_line_error
grep -q "cannot open '/nonexistent.wim'" "$TMP/err" || fail "missing file not named"
echo "not a wim" >"$TMP/text.wim"
expect 2 "$WTGFS" info "$TMP/text.wim"
one_line_error
grep -q "not a WIM" "$TMP/err" || fail "not-a-WIM not said"
expect 2 "$WTGFS" umount "$TMP"
one_line_error

need_tool wimcapture
mkdir -p "$TMP/src/Dir"
echo hello >"$TMP/src/Dir/a.txt"
wimcapture "$TMP/src" "$TMP/two.wim" "First" --compress=LZX >/dev/null
wimlib-imagex append "$TMP/src" "$TMP/two.wim" "Second \"quoted\"" >/dev/null
expect 0 "$WTGFS" info "$TMP/two.wim"
grep -q 'First' "$TMP/out" && grep -q 'Second' "$TMP/out" || fail "info lists no images"
expect 0 "$WTGFS" info --json "$TMP/two.wim"
python3 - "$TMP/out" <<'PY' || fail "info --json is not the expected JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["image_count"] == 2, d
assert [i["name"] for i in d["images"]] == ["First", 'Second "quoted"'], d
assert d["images"][0]["files"] == 1 and d["images"][0]["directories"] == 2, d
assert d["images"][0]["compression"] == "LZX" and d["images"][0]["solid"] is False
PY
echo PASS
