#!/bin/bash
# The whole test suite: the normal build with -Werror and `make check`, then
# the same tests again in an ASan + UBSan build (-fno-sanitize-recover).
# Ends with the line "N passed, N failed, N skipped".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh || exit 2
[ -x configure ] || autoreconf -fi >/dev/null || exit 2
if [ -f config.status ]; then
	echo "suite: the source tree is configured in place; run 'make distclean' first" >&2
	exit 2
fi
export WTGFS_TEST_IMAGES="${WTGFS_TEST_IMAGES:-$top/build-images}"
status=0
for variant in check asan; do
	dir="$top/build-$variant"
	flags="--enable-werror"
	[ "$variant" = asan ] && flags="$flags --enable-sanitizers"
	mkdir -p "$dir"
	echo "== $variant build"
	(cd "$dir" && "$top/configure" -q $flags >/dev/null && make -s -j2 >/dev/null) || {
		echo "suite: the $variant build failed" >&2
		status=2
		continue
	}
	(cd "$dir" && make -s -j1 check) || status=1
done
p=0 f=0 s=0
for trs in "$top"/build-check/tests/*.trs "$top"/build-check/fuzz/*.trs \
	"$top"/build-asan/tests/*.trs "$top"/build-asan/fuzz/*.trs; do
	[ -f "$trs" ] || continue
	case $(sed -n 's/^:test-result: //p' "$trs" | head -1) in
	PASS | XFAIL) p=$((p + 1)) ;;
	SKIP) s=$((s + 1)) ;;
	*) f=$((f + 1)) ;;
	esac
done
[ "$status" = 2 ] && f=$((f + 1))
echo "$p passed, $f failed, $s skipped"
[ "$f" = 0 ] && [ "$status" = 0 ]
