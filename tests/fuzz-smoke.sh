#!/bin/bash
# Short fuzz runs of every parser of outside bytes (the sanitizer build makes
# this the ASan + UBSan fuzz check); long runs: bench/fuzz-long.
. "$(dirname "$0")/lib.sh"
need_tool wimcapture wimexport
fuzz="${top_builddir:?}/fuzz"
runs=${WTGFS_FUZZ_RUNS:-400}

mkdir -p "$TMP/src/d/e" "$TMP/wim" "$TMP/res"
printf 'hello\n' >"$TMP/src/a.txt"
head -c 70000 /dev/zero | tr '\0' 'x' >"$TMP/src/d/big.txt"
seq 1 5000 >"$TMP/src/d/e/seq.txt"
ln "$TMP/src/a.txt" "$TMP/src/d/link.txt"
ln -s ../a.txt "$TMP/src/d/sym"
wimcapture "$TMP/src" "$TMP/wim/lzx.wim" t --compress=LZX >/dev/null
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/xpress.wim" --compress=XPRESS >/dev/null
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/solid.esd" --solid >/dev/null
wimexport "$TMP/wim/lzx.wim" 1 "$TMP/wim/none.wim" --compress=none >/dev/null
i=0
for w in "$TMP"/wim/*; do
	for kind in 0 1 2 3; do
		# parameters (see fuzz_resource.c) followed by a real WIM's bytes
		printf "\\x0$kind\\x0$((i % 4))\\x03\\x00\\xa0\\x86\\x01\\x00\\x00\\x00\\x00\\x00\\x10\\x00\\x00\\x00" >"$TMP/res/$i"
		cat "$w" >>"$TMP/res/$i"
		i=$((i + 1))
	done
done
"$fuzz/fuzz_wim" -runs="$runs" -seed=1 "$TMP/wim" || fail "fuzz_wim crashed"
"$fuzz/fuzz_resource" -runs="$((runs * 10))" -seed=1 "$TMP/res" || fail "fuzz_resource crashed"
echo PASS
