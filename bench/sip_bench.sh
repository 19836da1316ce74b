#!/usr/bin/env bash
# SIP redirect throughput (issue #14, Part F): sipp (Debian sip-tester) places INVITE → 302 → ACK calls at rising
# rates against our redirect service and, in the same run, against Kamailio (Debian kamailio) answering the same
# 302 (same three Contacts, stateful via tm, so it too retransmits until the ACK) from a static configuration.
# Prints, for each, the highest rate with 0 failed calls, and the ratio ours / Kamailio's.
#
# Usage: bash bench/sip_bench.sh [rates…]        (default rates: 500 1000 2000 3000 4000 5000 6000 8000)
# Env:   STEP_SECONDS (calls per step = rate × this; default 5), PYTHON (default .venv/bin/python, else
#        /work/main/.venv/bin/python, else python3), KAMAILIO_CHILDREN (UDP worker processes; default 2).
# Every call has a distinct (caller, number) pair from a 20,000-line injection file (1,000 callers × valid US
# numbers), so routing is not only cache hits. UDP only: it is the transport gateways load-test with.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python
  elif [ -x /work/main/.venv/bin/python ]; then PY=/work/main/.venv/bin/python
  else PY=python3; fi
fi
command -v sipp >/dev/null || { echo "sipp not installed (apt-get install sip-tester)" >&2; exit 2; }
command -v kamailio >/dev/null || { echo "kamailio not installed (apt-get install kamailio)" >&2; exit 2; }

rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(500 1000 2000 3000 4000 5000 6000 8000)
step=${STEP_SECONDS:-5}
children=${KAMAILIO_CHILDREN:-2}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/kamailio.pid" ] && kill "$(cat "$work/kamailio.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ours_port=$(free_port); kam_port=$(free_port)

# --- the calls: caller;number, 20,000 lines ------------------------------------------------------------------
"$PY" - "$work/calls.csv" <<'EOF'
import sys
with open(sys.argv[1], "w") as out:
    out.write("SEQUENTIAL\n")
    for n in range(20000):
        out.write(f"user{n % 1000}@contoso.com;+1206{2000000 + n * 37:07d}\n")
EOF

# --- our service: 1,000 voice users on one site with three gateways -------------------------------------------
cat > "$work/ours.py" <<'EOF'
import sys
from tenantry.voice.sip_server import run
from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, SiteRoute, Transport, VoiceUserRoute

gateways = (
    GatewayRoute("gw1.contoso.com", "gw1.contoso.com", 5068, Transport.TLS, "seattle"),
    GatewayRoute("gw2.contoso.com", "gw2.contoso.com", 5068, Transport.TLS, "seattle"),
    GatewayRoute("gw3.contoso.com", "gw3.contoso.com", 5068, Transport.TLS, "seattle"),
)
users = {}
for n in range(1000):
    address = f"user{n}@contoso.com"
    users[address] = VoiceUserRoute(f"u{n}", address, f"tel:+1425555{n:04d}", True, True, "seattle", "US")
snapshot = RoutingSnapshot("contoso", users, {"seattle": SiteRoute("seattle", gateways, ("ms1.contoso.com",))},
                           "peer.contoso.com", ("contoso.com",))
run("127.0.0.1", int(sys.argv[1]), lambda: snapshot, ping_gateways=False)
EOF
PYTHONPATH="$root/src" "$PY" "$work/ours.py" "$ours_port" &
pids+=($!)

# --- Kamailio: the same 302 from a static configuration --------------------------------------------------------
modules=$(dirname "$(find /usr/lib -name tm.so -path '*kamailio*' | head -1)")
cat > "$work/kamailio.cfg" <<EOF
#!KAMAILIO
debug=0
log_stderror=no
memdbg=5
memlog=5
children=$children
tcp_children=1
listen=udp:127.0.0.1:$kam_port
mpath="$modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "corex.so"
request_route {
  if (is_method("ACK")) { t_check_trans(); exit; }
  if (is_method("INVITE")) {
    if (t_check_trans()) { exit; }                     # a retransmission: tm resends the 302, like ours
    if (!t_newtran()) { sl_reply_error(); exit; }
    # Kamailio's own redirect idiom: the reply's Contacts are the destination set (R-URI first, then branches).
    \$ru = "sip:" + \$rU + "@gw1.contoso.com:5068;transport=tls;user=phone";
    append_branch("sip:\$rU@gw2.contoso.com:5068;transport=tls;user=phone");
    append_branch("sip:\$rU@gw3.contoso.com:5068;transport=tls;user=phone");
    t_reply("302", "Moved Temporarily");
    exit;
  }
  sl_send_reply("200", "OK");
}
EOF
kamailio -f "$work/kamailio.cfg" -P "$work/kamailio.pid" -m 256 -M 16 -w "$work" -Y "$work" >"$work/kamailio.log" 2>&1 \
  || { cat "$work/kamailio.log" >&2; exit 1; }

# --- the sipp scenario: INVITE, 302, ACK on the INVITE's branch ---------------------------------------------------
cat > "$work/uac.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="redirect bench">
  <send retrans="500"><![CDATA[

      INVITE sip:[field1]@[remote_ip]:[remote_port];user=phone SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field1]@[remote_ip]:[remote_port];user=phone>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="302"/>
  <send><![CDATA[

      ACK sip:[field1]@[remote_ip]:[remote_port];user=phone SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: <sip:[field0]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

  ]]></send>
</scenario>
EOF

# Wait for both to answer an OPTIONS-less probe: one call each.
sleep 1
for port in "$ours_port" "$kam_port"; do
  for _ in $(seq 1 30); do
    if sipp -sf "$work/uac.xml" -inf "$work/calls.csv" -m 1 -p "$(free_port)" -nostdin -timeout 2 -timeout_error \
         127.0.0.1:"$port" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
done

# One step: rate, calls; prints "<successful> <failed> <retransmissions> <seconds>".
step_run() {
  local port=$1 rate=$2 calls=$(( $2 * step ))
  local out="$work/step.out" t0 t1 cps
  t0=$(date +%s.%N)
  sipp -sf "$work/uac.xml" -inf "$work/calls.csv" -r "$rate" -m "$calls" -l $(( rate * 2 )) -p "$(free_port)" -nostdin \
       -timeout $(( step * 4 + 40 )) -timeout_error -max_socket 4096 127.0.0.1:"$port" >"$out" 2>&1 || true
  t1=$(date +%s.%N)
  local ok failed retrans
  # sipp's own cumulative "Call Rate" is the achieved rate; the wall time below includes its start-up.
  cps=$(awk -F'|' '/Call Rate/ {gsub(/ |cps/,"",$3); v=$3} END {print v+0}' "$out")
  ok=$(awk -F'|' '/Successful call/ {gsub(/ /,"",$3); v=$3} END {print v+0}' "$out")
  failed=$(awk -F'|' '/Failed call/ {gsub(/ /,"",$3); v=$3} END {print v+0}' "$out")
  retrans=$(awk '$1 == "INVITE" && $2 ~ /^-+>$/ {v=$4} END {print v+0}' "$out")   # INVITEs sipp sent again
  echo "$ok $failed $retrans $cps $(echo "$t1 - $t0" | bc)"
}

# Two verdicts per step. "0 failed": every call completed (the brief's measure) — but sipp retransmits an INVITE
# until it is answered, so an overloaded server still "completes" its calls, late. "Clean": 0 failed, sipp reached
# at least 95 % of the asked rate, and fewer than 1 % of INVITEs had to be sent again. The ratio uses "clean".
declare -A best=([ours]=0 [kamailio]=0)
declare -A clean=([ours]=0 [kamailio]=0)
printf "%-9s %7s %9s %7s %8s %8s %10s\n" target rate calls ok failed retrans "calls/s"
for rate in "${rates[@]}"; do
  for target in ours kamailio; do
    port=$ours_port; [ "$target" = kamailio ] && port=$kam_port
    read -r ok failed retrans achieved seconds < <(step_run "$port" "$rate")
    calls=$(( rate * step ))
    printf "%-9s %7s %9s %7s %8s %8s %10s\n" "$target" "$rate" "$calls" "$ok" "$failed" "$retrans" "$achieved"
    if [ "$failed" -eq 0 ] && [ "$ok" -eq "$calls" ] && [ "$rate" -gt "${best[$target]}" ]; then
      best[$target]=$rate
      if [ "$(echo "$achieved >= 0.95 * $rate && $retrans * 100 < $calls" | bc)" = 1 ] \
         && [ "$rate" -gt "${clean[$target]}" ]; then
        clean[$target]=$rate
      fi
    fi
  done
done
echo
echo "highest rate with 0 failed calls:  ours ${best[ours]}/s, kamailio ${best[kamailio]}/s"
echo "highest clean rate (0 failed, >= 95 % of the rate reached, < 1 % INVITEs resent): ours ${clean[ours]}/s, kamailio ${clean[kamailio]}/s"
if [ "${clean[kamailio]}" -gt 0 ]; then
  echo "ratio ours/kamailio (clean): $(echo "scale=2; ${clean[ours]} / ${clean[kamailio]}" | bc)"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (sipp, the server and anything else share them)"
