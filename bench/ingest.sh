#!/usr/bin/env bash
# Ingest throughput of the collector, beside a bare Starlette JSON echo measured in the same run.
#
#   bench/ingest.sh            (DURATION=10 by default: each wrk run lasts that many seconds)
#
# Real processes on loopback: `pinbridge run` (collector, durable SQLite store, sender to the
# embedded emulator, all in one process) and bench/echo.py under uvicorn with the options
# `pinbridge run` uses (uvloop, httptools, no access log). The servers run on CPU 0, the load
# generator on CPU 1 (taskset). Rows:
#   single  wrk -t1 -c64, one Segment `track` per POST to /v1/track (fresh messageId each;
#           5,000 returning customers, each with an email and a phone of their own)
#   batch   wrk -t1 -c16, 100 `track` calls per POST to /v1/batch
#   p99     hey -q: a fixed 2,000 requests/s of single calls for DURATION seconds; wrk2 (fixed
#           rate) is not in Debian, and wrk's own latency comes from a closed loop at full load.
#           hey sends one body over and over, so after the first all are answered `duplicate`
#           (an SDK's retries look like this).
#   paced   wrk -c20 with a 10 ms pause after each answer per connection (about 2,000 req/s at
#           most): single calls with a fresh messageId each, so every one is new and stored.
# Needs wrk and hey (apt-get install -y wrk hey); not run in CI.
# Goals (issue 5): single >= 0.8x the echo's requests/s; p99 < 20 ms at 2,000 req/s;
# batches >= 50,000 events/s.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
PY=.venv/bin/python
KEY=bench-key
for tool in wrk hey taskset; do
    command -v "$tool" >/dev/null || { echo "bench/ingest.sh needs $tool (apt-get install -y wrk hey)" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {  # url
    "$PY" - "$1" <<'PYEOF'
import sys, time, httpx2
deadline = time.monotonic() + 20
while True:
    try:
        if httpx2.get(sys.argv[1], timeout=1).status_code < 500:
            break
    except httpx2.TransportError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"{sys.argv[1]} did not answer")
    time.sleep(0.1)
PYEOF
}

# No per-key request limit: the benchmark measures the collector, not the limiter.
printf '[server]\nrequests_per_minute_per_key = 0\n' > "$work/pinbridge.toml"
pb_port="$(free_port)"
(cd "$work" && PINBRIDGE_DATABASE_URL="sqlite:///$work/pb.db" PINBRIDGE_WRITE_KEYS="$KEY" \
    exec taskset -c 0 "$OLDPWD/.venv/bin/pinbridge" run --config pinbridge.toml --port "$pb_port" \
    >"$work/pinbridge.log" 2>&1) &
pids+=($!)
echo_port="$(free_port)"
taskset -c 0 .venv/bin/uvicorn echo:app --app-dir bench --port "$echo_port" --loop uvloop \
    --http httptools --no-access-log --log-level warning >"$work/echo.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$pb_port/healthz"
wait_ready "http://127.0.0.1:$echo_port/"

declare -A rps p99 errors
run_wrk() {  # name url mode connections
    local out
    out="$(taskset -c 1 wrk -t1 -c"$4" -d"${DURATION}s" --latency -s bench/ingest.lua "$2" -- "$3" "$KEY")"
    echo "$out" > "$work/$1.wrk"
    rps[$1]="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p99[$1]="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    errors[$1]="$(awk -F': *' '/Non-2xx/ {print $2}' <<<"$out")"
    errors[$1]="${errors[$1]:-0}"
}

echo "ingest benchmark: ${DURATION}s per run, servers on CPU 0, load on CPU 1"
run_wrk echo_single "http://127.0.0.1:$echo_port/v1/track" single 64
run_wrk pb_single "http://127.0.0.1:$pb_port/v1/track" single 64
run_wrk echo_batch "http://127.0.0.1:$echo_port/v1/batch" batch 16
run_wrk pb_batch "http://127.0.0.1:$pb_port/v1/batch" batch 16

# Fixed rate: 20 workers x 100 requests/s each.
"$PY" - "$work/single.json" <<'PYEOF'
import json, sys
call = {"type": "track", "event": "Order Completed", "messageId": "hey-1", "userId": "user-1",
        "context": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
                    "traits": {"email": "someone@example.com"}},
        "properties": {"order_id": "hey-1", "revenue": 72.39, "currency": "USD"}}
open(sys.argv[1], "w").write(json.dumps(call))
PYEOF
auth="Authorization: Basic $(printf '%s:' "$KEY" | base64)"
fixed() {  # name url
    local out
    out="$(taskset -c 1 hey -z "${DURATION}s" -c 20 -q 100 -m POST -T application/json -H "$auth" \
        -D "$work/single.json" "$2")"
    echo "$out" > "$work/$1.hey"
    rps[$1]="$(awk '/Requests\/sec:/ {print $2}' <<<"$out")"
    p99[$1]="$(awk '$1 == "99%" && $2 == "in" {printf "%.2fms", $3 * 1000}' <<<"$out")"
    errors[$1]="$(awk '/^\s*\[[0-9]+\]/ && $1 != "[200]" {n += $2} END {print n + 0}' <<<"$out")"
}
fixed echo_fixed "http://127.0.0.1:$echo_port/v1/track"
fixed pb_fixed "http://127.0.0.1:$pb_port/v1/track"
run_wrk echo_paced "http://127.0.0.1:$echo_port/v1/track" paced 20
run_wrk pb_paced "http://127.0.0.1:$pb_port/v1/track" paced 20

"$PY" - <<PYEOF
rows = [
    ("single /v1/track (wrk -c64)", "${rps[echo_single]}", "${rps[pb_single]}", 1, "${p99[echo_single]}", "${p99[pb_single]}", "${errors[pb_single]}"),
    ("batch of 100 /v1/batch (wrk -c16)", "${rps[echo_batch]}", "${rps[pb_batch]}", 100, "${p99[echo_batch]}", "${p99[pb_batch]}", "${errors[pb_batch]}"),
    ("single at 2,000 req/s (hey -q, dup)", "${rps[echo_fixed]}", "${rps[pb_fixed]}", 1, "${p99[echo_fixed]}", "${p99[pb_fixed]}", "${errors[pb_fixed]}"),
    ("single paced ~2,000 req/s (wrk, new)", "${rps[echo_paced]}", "${rps[pb_paced]}", 1, "${p99[echo_paced]}", "${p99[pb_paced]}", "${errors[pb_paced]}"),
]
print(f"{'':36} {'echo req/s':>11} {'pinbridge req/s':>16} {'events/s':>10} {'ratio':>6} {'p99 echo':>9} {'p99 pb':>9} {'non-2xx':>8}")
for name, echo, pb, per, p_echo, p_pb, errors in rows:
    echo, pb = float(echo), float(pb)
    print(f"{name:36} {echo:11,.0f} {pb:16,.0f} {pb * per:10,.0f} {pb / echo:6.2f} {p_echo:>9} {p_pb:>9} {errors:>8}")
PYEOF
echo "goals: single ratio >= 0.80; p99 < 20 ms at 2,000 req/s; batch >= 50,000 events/s"
