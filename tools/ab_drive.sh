#!/usr/bin/env bash
# A/B of two flowd binaries at the same moment: both serve at once (two scratch data dirs), with
# the same trivial workflows (fork and reuse), and are driven alternately by the bench's load
# generator. Compare the rows of one run; the figures of separate runs move with the machine.
#
# usage: tools/ab_drive.sh FLOWD_A "FLAGS_A" FLOWD_B "FLAGS_B" FLOWD_BENCH [ROUNDS]
#   e.g. tools/ab_drive.sh /tmp/flowd-old "" target/release/flowd "--kernel-sandbox off" \
#        target/release/flowd-bench 2
# FIELDS_A / FIELDS_B (optional): more fields of the workflows on A / B, as JSON members with a
# leading comma, e.g. FIELDS_A=',"egress_allow":["10.200.0.2"]'.
set -uo pipefail
A=$1 FA=$2 B=$3 FB=$4 BENCH=$5 ROUNDS=${6:-3}
RUNTIME_DIR=/var/tmp/flowd-ab-runtimes
KEY=ab-drive-key-0123456789abcdef
mkdir -p "$RUNTIME_DIR"

start() { # name port binary flags fields
  local name=$1 port=$2 bin=$3 flags=$4 fields=$5 dir=/var/tmp/flowd-ab-$1
  rm -rf "$dir" && mkdir -p "$dir"
  # shellcheck disable=SC2086 # the flags are several words
  FLOWD_ADMIN_API_KEY=$KEY FLOWD_RUNTIME_DIR=$RUNTIME_DIR \
    "$bin" serve --listen 127.0.0.1:"$port" --data-dir "$dir" $flags >"$dir.log" 2>&1 &
  echo $! >"$dir.pid"
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done
  local code='import json\ndef workflow(_request, settings):\n    return {\"status_code\": 200, \"body\": json.dumps({\"ok\": True})}\n'
  for iso in fork reuse; do
    curl -sf -X POST "http://127.0.0.1:$port/api/v1/workflows" -H "Authorization: Bearer $KEY" \
      -d "{\"name\":\"ab-$iso\",\"mode\":\"catch\",\"isolation\":\"$iso\",\"code\":\"$code\"$fields}" \
      >"$dir.$iso.json" || { echo "creating ab-$iso on $name failed; see $dir.log" >&2; exit 1; }
  done
}
hook() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['hook_url'])" "$1"; }
stop() { for name in A B; do kill "$(cat /var/tmp/flowd-ab-$name.pid)" 2>/dev/null; done; }
trap stop EXIT

start A 18181 "$A" "$FA" "${FIELDS_A:-}"
start B 18182 "$B" "$FB" "${FIELDS_B:-}"
for round in $(seq 1 "$ROUNDS"); do
  for iso in reuse fork; do
    for c in 1 16; do
      n=$([ "$c" = 1 ] && echo 2000 || echo 6000)
      for name in A B; do
        port=$([ $name = A ] && echo 18181 || echo 18182)
        url=http://127.0.0.1:$port$(hook /var/tmp/flowd-ab-$name.$iso.json)
        echo "round $round $iso c=$c $name: $("$BENCH" --drive "$url" -c "$c" -n "$n" --seconds 20 --json '{"a":1}' 2>&1 | tail -1)"
      done
    done
  done
done
