#!/bin/bash
# tests/export-random.sh on ESD bases (solid resources, LZMS): the raw
# append keeps their solid runs and writes its new blobs beside them, round
# after round.  Seeds 3 and 4 (4: hard links and symlinks), 3 rounds of 40
# changes; WTGFS_EXPORT_RANDOM as there.
WTGFS_EXPORT_RANDOM_IMAGE=solid.esd WTGFS_EXPORT_RANDOM="${WTGFS_EXPORT_RANDOM:-3,4 3 40}" \
	exec "$(dirname "$0")/export-random.sh"
