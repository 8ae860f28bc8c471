#!/bin/bash
# The randomized model test of the read-write mount (tests/model.py): random
# operations on a delta mount and on a plain directory must end the same
# way, and the trees must stay equal across umount, verify and mount.
# Fixed seeds, so a failure is reproducible; WTGFS_MODEL_SEED=N runs seed N
# instead (bench/model-long runs many more).
. "$(dirname "$0")/lib.sh"
need_root
need_fuse
need_tool python3
test_images small

seeds=${WTGFS_MODEL_SEED:-"1 2"}
for seed in $seeds; do
	echo "== seed $seed"
	MOUNTS="$MOUNTS $TMP/work-$seed/mnt" # cleanup if model.py is killed
	python3 "$top_srcdir/tests/model.py" --wtgfs "$WTGFS" --image "$IMAGES/lzx.wim" \
		--work "$TMP/work-$seed" --seed "$seed" --ops 300 --cycles 3 ||
		fail "the model test failed with seed $seed (rerun: WTGFS_MODEL_SEED=$seed)"
done
echo PASS
