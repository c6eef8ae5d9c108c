#!/usr/bin/env bash
# What encryption at rest (age, X25519) costs a snapshot: the same payload backed up on
# stop and restored by a new container, into a file:// store on this machine, plain and
# with `encrypt_to` / `identity_file`.
#
#   tests/bench/encryption.sh
#
# bosun (release build, a plain process) supervises one `sleep` whose backup `dump` is
# `cat PAYLOAD`; on SIGTERM it streams it into the store. Timed from "dumping its data" to
# "snapshot ... committed" (log timestamps). A second bosun with a fresh state_dir
# restores it into `cat > /dev/null`: timed from "verifying its data" to "loaded" (the
# verifying pass and the load pass: the item is read, decrypted and checked twice).
# Peak RSS (VmHWM) of each. The payload comes from /dev/urandom (incompressible: zstd
# does not shrink it, the cipher sees every byte).
#
# Environment:
#   BENCH_BYTES   payload size (default 536870912 = 512 MiB), cached as
#                 /tmp/bosun-bench-payload-BYTES.bin
#   BOSUN_BIN     bosun binary (default: cargo build --release -p bosun, then target/release/bosun)
#   BENCH_DIR     work dir (default: a new one under /tmp; removed unless BENCH_KEEP=1)
set -euo pipefail
cd "$(dirname "$0")/../.."
BYTES=${BENCH_BYTES:-536870912}
[[ $BYTES =~ ^[0-9]+$ && $BYTES -gt 0 ]] || { echo "BENCH_BYTES must be a positive integer" >&2; exit 2; }
if [[ -z ${BOSUN_BIN:-} ]]; then
    cargo build --release -p bosun >&2
    BOSUN_BIN=${CARGO_TARGET_DIR:-target}/release/bosun
fi
payload=/tmp/bosun-bench-payload-$BYTES.bin
[[ -f $payload && $(stat -c %s "$payload") == "$BYTES" ]] || head -c "$BYTES" /dev/urandom > "$payload"
work=${BENCH_DIR:-$(mktemp -d /tmp/bosun-bench-enc.XXXXXX)}
mkdir -p "$work"
cleanup() { [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$work"; }
trap cleanup EXIT

# An age X25519 key pair (python3-cryptography; bech32 as age spells it).
python3 - "$work" <<'PY'
import sys
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization as s
CS = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
def polymod(v):
    g = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]; c = 1
    for x in v:
        b = c >> 25; c = (c & 0x1ffffff) << 5 ^ x
        for i in range(5): c ^= g[i] if (b >> i) & 1 else 0
    return c
def bech32(hrp, data):
    acc = bits = 0; five = []
    for b in data:
        acc = acc << 8 | b; bits += 8
        while bits >= 5: bits -= 5; five.append(acc >> bits & 31)
    if bits: five.append(acc << (5 - bits) & 31)
    v = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp] + five
    pm = polymod(v + [0] * 6) ^ 1
    return hrp + "1" + "".join(CS[d] for d in five + [pm >> 5 * (5 - i) & 31 for i in range(6)])
k = X25519PrivateKey.generate()
raw = k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
pub = k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
open(sys.argv[1] + "/key.txt", "w").write(bech32("age-secret-key-", raw).upper() + "\n")
open(sys.argv[1] + "/key.pub", "w").write(bech32("age", pub) + "\n")
PY

ms() { # the log timestamp of the first line matching $2 in $1, in ms
    local line; line=$(grep -m1 -- "$2" "$1") || { echo "no '$2' in $1" >&2; exit 1; }
    date -d "$(cut -c1-26 <<<"$line" | sed 's/T/ /')" +%s%3N
}
wait_for() { # file, pattern, seconds
    local i; for ((i = 0; i < $3 * 10; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1" >&2; exit 1
}
run() { # name, extra [snapshot] keys -> "up_ms down_ms up_rss_kb down_rss_kb stored_bytes"
    local d=$work/$1; mkdir -p "$d/store" "$d/a" "$d/b"
    for c in a b; do
        cat > "$d/$c/bosun.toml" <<EOF
[bosun]
state_dir = "$d/$c/state"
control_socket = "$d/$c/ctl.sock"
stop_budget = "900s"
[service.data]
run = "exec sleep 100000"
start_secs = "100ms"
[service.data.backup]
dump = ["cat", "$payload"]
load = "cat > /dev/null"
timeout = "900s"
[snapshot]
store = "file://$d/store"
$2
EOF
    done
    BOSUN_LOG=info "$BOSUN_BIN" run -c "$d/a/bosun.toml" > "$d/a.log" 2>&1 & local pid=$!
    wait_for "$d/a.log" "boot complete" 30
    kill -TERM $pid
    local rss_up=0 r
    while kill -0 $pid 2>/dev/null; do
        r=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || true); [[ -n $r ]] && rss_up=$r; sleep 0.05
    done
    wait $pid || { echo "bosun up failed: $d/a.log" >&2; exit 1; }
    local up=$(( $(ms "$d/a.log" "snapshot .* committed") - $(ms "$d/a.log" "dumping its data") ))
    BOSUN_LOG=info "$BOSUN_BIN" run -c "$d/b/bosun.toml" > "$d/b.log" 2>&1 & pid=$!
    local rss_down=0
    while ! grep -q "loaded" "$d/b.log" 2>/dev/null; do
        kill -0 $pid 2>/dev/null || { echo "bosun down failed: $d/b.log" >&2; exit 1; }
        r=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || true); [[ -n $r ]] && rss_down=$r; sleep 0.05
    done
    local down=$(( $(ms "$d/b.log" "loaded ") - $(ms "$d/b.log" "verifying its data") ))
    kill -KILL $pid; wait $pid 2>/dev/null || true
    local stored; stored=$(find "$d/store/snapshots" -name 'data.zst*' -printf '%s\n' | head -1)
    echo "$up $down $rss_up $rss_down $stored"
}
mib_s() { awk -v b="$BYTES" -v ms="$1" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
read -r pu pd pru prd pst <<<"$(run plain "")"
read -r eu ed eru erd est <<<"$(run age "encrypt_to = [\"$work/key.pub\"]
identity_file = \"$work/key.txt\"")"
echo "payload $((BYTES / 1048576)) MiB (incompressible), file:// store, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf '| %-9s | %-22s | %-30s | %-11s | %-13s | %s\n' mode "up (dump -> commit)" "down (verify + load, 2 reads)" "peak RSS up" "peak RSS down" "stored bytes"
printf '| %-9s | %6d ms, %5s MiB/s | %6d ms, %5s MiB/s (x2 read) | %7d KiB | %9d KiB | %s\n' plain "$pu" "$(mib_s "$pu")" "$pd" "$(mib_s "$pd")" "$pru" "$prd" "$pst"
printf '| %-9s | %6d ms, %5s MiB/s | %6d ms, %5s MiB/s (x2 read) | %7d KiB | %9d KiB | %s\n' age "$eu" "$(mib_s "$eu")" "$ed" "$(mib_s "$ed")" "$eru" "$erd" "$est"
awk -v a="$pu" -v b="$eu" -v c="$pd" -v d="$ed" 'BEGIN { printf "encryption costs: up %.2fx the time, down %.2fx\n", b / a, d / c }'
