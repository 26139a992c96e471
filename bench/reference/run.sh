#!/bin/sh
# Runs robarch's attack reference comparison end to end (see
# docs/attacks-reference.md):
#
#   AUTOATTACK_DIR=/path/to/auto-attack bench/reference/run.sh CHECKPOINT OUT
#
# CHECKPOINT is a robarch checkpoint (robarch train's model.safetensors);
# AUTOATTACK_DIR a checkout of github.com/fra31/auto-attack (not shipped
# with robarch). Environment: N (points, 500), EPS (0.1), NORM (Linf),
# BS (250), THREADS (2), SPEED_ROUNDS (3), SPEED_BATCH (128).
set -eu
ckpt=${1:?usage: run.sh CHECKPOINT OUT}
out=${2:?usage: run.sh CHECKPOINT OUT}
: "${AUTOATTACK_DIR:?set AUTOATTACK_DIR to a checkout of github.com/fra31/auto-attack}"
N=${N:-500} EPS=${EPS:-0.1} NORM=${NORM:-Linf} BS=${BS:-250}
THREADS=${THREADS:-2} SPEED_ROUNDS=${SPEED_ROUNDS:-3} SPEED_BATCH=${SPEED_BATCH:-128}
export THREADS SPEED_BATCH AUTOATTACK_DIR
: "${GOTCH_CACHE:=${TMPDIR:-/tmp}/gotch-cache}"
export GOTCH_CACHE
here=$(dirname "$0")
mkdir -p "$out"
go build -o "$out/reference" "./$here"
# Debian's torch (a pyenv python3 may shadow it on PATH), with the glibc
# malloc settings robarch applies to itself (internal/torchrt), so both
# sides run on the same allocator configuration; ROBARCH_MALLOC=default
# runs both on glibc's defaults.
py="env $("$out/reference" -mode malloc-env) /usr/bin/python3"
common="-weights $ckpt -out $out -n $N -eps $EPS -norm $NORM -bs $BS -threads $THREADS"

"$out/reference" -mode prepare $common
"$out/reference" -mode attacks $common 2>&1 | tee "$out/go_attacks.log"
$py "$here/reference.py" attacks "$AUTOATTACK_DIR" "$out" 2>&1 | tee "$out/py_attacks.log"

# Throughput: Go and PyTorch alternate, so both see the same machine load.
i=1
while [ "$i" -le "$SPEED_ROUNDS" ]; do
	SPEED_TAG=$i "$out/reference" -mode speed $common -speed-batch "$SPEED_BATCH"
	$py "$here/reference.py" speed "$out" "$i"
	i=$((i + 1))
done
$py "$here/reference.py" table "$out" | tee "$out/table.md"
