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
usage_error() { # usage_error CMD TEXT: "wtgfs CMD: TEXT (see 'wtgfs CMD --help')", one line
	[ "$(cat "$TMP/err")" = "wtgfs $1: $2 (see 'wtgfs $1 --help')" ] ||
		{ cat "$TMP/err"; fail "expected 'wtgfs $1: $2' and the pointer to --help, one line"; }
	[ ! -s "$TMP/out" ] || fail "a usage error wrote to stdout"
}

# every command 'wtgfs --help' lists: --help and -h on stdout, anywhere
# among the arguments; the same rules for unknown options and values
commands=$("$WTGFS" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
for cmd in info mount umount init log verify; do
	echo "$commands" | grep -qx "$cmd" || fail "'wtgfs --help' does not list '$cmd'"
done
for cmd in $commands; do
	for h in --help -h; do
		expect 0 "$WTGFS" "$cmd" $h
		grep -q "^usage: wtgfs $cmd" "$TMP/out" || fail "'$cmd $h' shows no usage"
		[ ! -s "$TMP/err" ] || fail "'$cmd $h' wrote to stderr"
	done
	expect 0 "$WTGFS" "$cmd" some-operand --help
	grep -q "^usage: wtgfs $cmd" "$TMP/out" || fail "'$cmd X --help' shows no usage"
	expect 0 "$WTGFS" help "$cmd"
	grep -q "^usage: wtgfs $cmd" "$TMP/out" || fail "'help $cmd' shows no usage"
	expect 2 "$WTGFS" "$cmd" --bogus x y
	usage_error "$cmd" "unknown option '--bogus'"
	expect 2 "$WTGFS" "$cmd" x -Q y
	usage_error "$cmd" "unknown option '-Q'"
	expect 2 "$WTGFS" "$cmd" --help=yes
	usage_error "$cmd" "option '--help' takes no value"
done
expect 2 "$WTGFS" info
usage_error info "IMAGE is missing"
expect 2 "$WTGFS" info a b
usage_error info "one IMAGE at a time"
expect 2 "$WTGFS" info --json=yes x
usage_error info "option '--json' takes no value"
expect 2 "$WTGFS" mount only-one-arg
usage_error mount "IMAGE and MNT are needed"
expect 2 "$WTGFS" mount a b c
usage_error mount "too many arguments"
expect 2 "$WTGFS" umount a b
usage_error umount "one MNT is needed"
expect 2 "$WTGFS" init a
usage_error init "DELTA and IMAGE are needed"
expect 2 "$WTGFS" verify
usage_error verify "one DELTA is needed"
# mount's options in all their spellings reach the option parser
for o in "-o cache=lots" "-ocache=lots" "--options cache=lots" "--options=cache=lots" \
	"-o threads=2,cache=lots" "-f -d -o cache=lots" "--foreground --debug -ocache=lots"; do
	# shellcheck disable=SC2086
	expect 2 "$WTGFS" mount $o a b
	usage_error mount "bad cache size 'lots' (at least 1M)"
done
expect 2 "$WTGFS" mount a b -o
usage_error mount "option '-o' needs a value"
expect 2 "$WTGFS" mount a b --base
usage_error mount "option '--base' needs a value"
expect 2 "$WTGFS" mount -o frob a b
usage_error mount "unknown mount option 'frob'"
for b in "--base=x" "--base x"; do
	# shellcheck disable=SC2086
	expect 2 "$WTGFS" mount $b "$TMP/not-a-delta" "$TMP"
	usage_error mount "--base goes with a delta, and '$TMP/not-a-delta' is not one"
done
# '--' ends the options: what follows is an operand, even "--help"
expect 2 "$WTGFS" info -- --help
one_line_error
grep -q "cannot open '--help'" "$TMP/err" || { cat "$TMP/err"; fail "'--' did not end the options"; }
expect 2 "$WTGFS" info /nonexistent.wim
one_line_error
grep -q "cannot open '/nonexistent.wim'" "$TMP/err" || fail "missing file not named"
echo "not a wim" >"$TMP/text.wim"
expect 2 "$WTGFS" info "$TMP/text.wim"
one_line_error
grep -q "not a WIM" "$TMP/err" || fail "not-a-WIM not said"
expect 2 "$WTGFS" umount "$TMP"
one_line_error

# tests/lib.sh: a tool the setup installs but is missing skips a test,
# and fails it in CI (CI=true)
printf '. "%s/tests/lib.sh"\nneed_tool wtgfs-no-such-tool\necho reached\n' "$top_srcdir" >"$TMP/need.sh"
for ci in "" true; do
	rc=0
	CI=$ci bash "$TMP/need.sh" >"$TMP/need.out" 2>&1 || rc=$?
	want=77 && [ "$ci" = true ] && want=1
	[ "$rc" = "$want" ] || { cat "$TMP/need.out"; fail "need_tool with CI='$ci' exited $rc, not $want"; }
	grep -q reached "$TMP/need.out" && fail "need_tool let a test go on without its tool"
done

need_tool wimcapture jq
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
# the same through jq, every field typed; options after operands and after --
expect 0 "$WTGFS" info "$TMP/two.wim" --json
[ "$(jq -r .path "$TMP/out")" = "$TMP/two.wim" ] || fail "--json after the operand"
cp "$TMP/two.wim" "$TMP/-dash.wim"
(cd "$TMP" && "$WTGFS" info --json -- -dash.wim) >"$TMP/out" || fail "info -- -dash.wim failed"
[ "$(grep -c . "$TMP/out")" = 1 ] || fail "info --json is not one line"
jq -e '.path == "-dash.wim" and .format == "wim" and .image_count == 2 and .boot_index == 0
	and (.guid | test("^[0-9a-f]{32}$")) and (.file_size | type) == "number"
	and .pipable == false and .integrity_table == false and .part_number == 1 and .total_parts == 1
	and ([.images[] | .index] == [1, 2])
	and ([.images[] | .files] == [1, 1]) and (.images[1].name == "Second \"quoted\"")
	and (.images[0] | has("name_raw") | not) and (.path_raw == null)' "$TMP/out" >/dev/null ||
	{ cat "$TMP/out"; fail "info --json fields"; }
# a name that is not UTF-8: U+FFFD in the string, the exact bytes in NAME_raw
bad=$(printf '%s/bad\377\376name.wim' "$TMP")
cp "$TMP/two.wim" "$bad"
expect 0 "$WTGFS" info --json "$bad"
jq -e --arg p "$TMP/bad" '.path == ($p + "\ufffd\ufffdname.wim")' "$TMP/out" >/dev/null ||
	{ cat "$TMP/out"; fail "a non-UTF-8 path is not written with U+FFFD"; }
[ "$(jq -r .path_raw "$TMP/out" | base64 -d)" = "$bad" ] || fail "path_raw does not give the bytes back"
python3 - "$TMP/out" <<'PY' || fail "info --json with a non-UTF-8 path is not strict JSON"
import json, sys
json.loads(open(sys.argv[1], 'rb').read().decode('utf-8', 'strict'))
PY

# log --json on a new delta
expect 0 "$WTGFS" init "$TMP/d.delta" "$TMP/two.wim:2"
expect 0 "$WTGFS" log "$TMP/d.delta" --json
[ "$(grep -c . "$TMP/out")" = 1 ] || fail "log --json is not one line"
jq -e --arg d "$TMP/d.delta" --arg w "$TMP/two.wim" '.delta == $d and .base.path == $w
	and .base.index == 2 and (.base.size | type) == "number" and (.base.id | type) == "string"
	and (.layers | length) == 1 and .layers[0].head == true and .layers[0].snapshot == null
	and .layers[0].message == null and (.layers[0].created | type) == "number"
	and .layers[0].inodes == 0 and .layers[0].chunk_bytes == 0' "$TMP/out" >/dev/null ||
	{ cat "$TMP/out"; fail "log --json fields"; }
expect 0 "$WTGFS" verify -- "$TMP/d.delta"
echo PASS
