#!/usr/bin/env bash
# Soak: the gateway (release build) on its generated demo traffic for MINUTES
# (default 30), with a reload (SIGHUP) and a newly signed revocation list
# alternating every INTERVAL seconds (default 5). Prints, every interval:
# elapsed time, RSS, receive rate, forwarded, drops, reloads and the
# revocation serial in force. At the end it checks and prints: RSS after
# warm-up grew by less than 10 %, the rate's spread, 0 buffers in use at exit,
# accounting exact, every reload and revocation list accepted. Exit 1 if any
# check fails. Traffic goes only to in-memory ports.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
interval=${2:-5}
cargo build --release -q -p mnp-gateway
B=$PWD/target/release/mnp-gateway
tmp=$(mktemp -d -t mnp-soak.XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s#../target/demo-drops.pcapng#drops.pcapng#" -e "s#127.0.0.1:9464#127.0.0.1:$port#" \
    -e 's#^epochs = \[{ epoch = 1, secret = "keys/acme.epoch1.secret" }\]#&\nrevocations = "keys/acme.revocations"#' \
    configs/demo.toml > "$tmp/demo.toml"
$B keygen --dir "$tmp/keys" --name acme --epochs 1 >/dev/null
# The first list is signed against the config before it names the list.
serial=1
sed '/^revocations = /d' "$tmp/demo.toml" > "$tmp/bootstrap.toml"
$B revoke --config "$tmp/bootstrap.toml" --authority acme --serial $serial \
    --credential 9001 --out "$tmp/keys/acme.revocations" >/dev/null
$B run --config "$tmp/demo.toml" --duration $((minutes * 60)) >"$tmp/out.log" 2>"$tmp/err.log" &
pid=$!
metric() { curl -s "127.0.0.1:$port/metrics" | awk -v m="$1" '$1 ~ "^"m {s += $2} END {printf "%.0f", s}'; }
sleep 2
printf '%8s %9s %9s %14s %14s %14s %8s %7s\n' elapsed rss_MB rx_Mpps rx forwarded dropped reloads serial
start=$(date +%s); last_rx=0; last_t=$start; i=0
rss_samples=(); rate_samples=()
while kill -0 "$pid" 2>/dev/null; do
    sleep "$interval"
    kill -0 "$pid" 2>/dev/null || break
    i=$((i + 1))
    if [ $((i % 2)) -eq 0 ]; then
        kill -HUP "$pid"
    else
        serial=$((serial + 1))
        $B revoke --config "$tmp/demo.toml" --authority acme --serial $serial \
            --credential 9001 --credential $((500000 + serial)) --out "$tmp/keys/acme.revocations" >/dev/null
    fi
    now=$(date +%s)
    rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/$pid/status 2>/dev/null || echo 0)
    rx=$(metric 'mnp_rx_packets_total'); fwd=$(metric 'mnp_forwarded_packets_total')
    drop=$(metric 'mnp_dropped_packets_total'); rel=$(metric 'mnp_reloads_total{result="ok"}')
    rate=$(python3 -c "print(f'{($rx - $last_rx) / max($now - $last_t, 1) / 1e6:.3f}')")
    last_rx=$rx; last_t=$now
    printf '%7ss %9s %9s %14s %14s %14s %8s %7s\n' $((now - start)) "$rss" "$rate" "$rx" "$fwd" "$drop" "$rel" "$serial"
    [ $i -gt 2 ] && rss_samples+=("$rss") && rate_samples+=("$rate")
done
wait "$pid" || { cat "$tmp/err.log" >&2; echo "soak: the gateway exited with an error" >&2; exit 1; }
sed -n '/=== summary/,$p' "$tmp/out.log"
python3 - "$tmp/out.log" "$tmp/err.log" "${rss_samples[*]:-}" "${rate_samples[*]:-}" <<'PY'
import re, statistics, sys
out, err = open(sys.argv[1]).read(), open(sys.argv[2]).read()
rss = [float(x) for x in sys.argv[3].split()]
rate = [float(x) for x in sys.argv[4].split()]
ok = True
def check(cond, what):
    global ok
    print(("ok    " if cond else "FAIL  ") + what)
    ok &= cond
if rss:
    growth = (rss[-1] - rss[0]) / rss[0] * 100
    check(growth < 10, f"RSS after warm-up {rss[0]:.1f} -> {rss[-1]:.1f} MB ({growth:+.1f} %), max {max(rss):.1f}")
if rate:
    check(min(rate) > 0, f"rate min/median/max {min(rate):.3f}/{statistics.median(rate):.3f}/{max(rate):.3f} Mpps")
check("buffers in use at exit: 0" in out, "0 packet buffers in use at exit")
check(": exact" in out, "accounting exact (rx = forwarded + legacy + audit + local + dropped)")
m = re.search(r"reloads (\d+) ok / (\d+) failed, revocation lists (\d+) loaded / (\d+) rejected", out)
check(bool(m) and m.group(2) == "0" and m.group(4) == "0",
      f"reloads and revocation lists all accepted ({m.group(0) if m else 'no control line'})")
sys.exit(0 if ok else 1)
PY
