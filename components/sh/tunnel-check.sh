# The guide's test from one end of a tunnel (components/tunnelCheck.ts):
#   tcpdump -nn -i eth0 udp port 5555   while   ping -I 10.10.10.1 10.10.10.2 -c 3
# Prints a JSON result and fails unless pings came back and UDP packets to and from the FOU port
# were captured. The step sets, quoted: fou_dev (underlay device), fou_gwip and fou_peer (this
# end's GWIP and the peer's), fou_local and fou_remote (underlay addresses), fou_port.
# shellcheck shell=sh disable=SC2154 # the variables above are set by the step
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
# Made before tcpdump's job opens it: the shell goes on to read it before the job runs.
: >"$d/err"
# Only this tunnel's packets: a port may be shared with tunnels to other peers.
timeout 50 tcpdump -nn -l -i "$fou_dev" -c 6 udp port "$fou_port" and host "$fou_remote" >"$d/cap" 2>"$d/err" &
tp=$!
# The output is read by the shell's read and case, not grep or sed: builtins cost no process.
listening() { while IFS= read -r l; do case $l in *listening*) return 0 ;; esac; done <"$d/err"; return 1; }
# "3 packets transmitted, 3 received, …" (busybox: "3 packets received")
count_pings() {
  sent=0; received=0
  while IFS= read -r l; do
    case $l in *" packets transmitted, "*) sent=${l%% *}; r=${l#*, }; received=${r%% *} ;; esac
  done <"$d/ping"
  case $sent in ""|*[!0-9]*) sent=0 ;; esac
  case $received in ""|*[!0-9]*) received=0 ;; esac
}
i=0; while ! listening && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
# -w: wait for all three replies (up to 5 s). Without it, a ping at 0.2 s intervals stops two
# round trips after the last request, and one slow reply (a busy host) counts as lost. Rounds
# again for up to 40 s while replies are missing: after the peer answered FOU packets with port
# unreachable (a rebooted peer before its port is back), the kernel's tunnel fails as many of
# its next sends locally, for 30 s (ip_tunnel's err_count and IPTUNNEL_ERR_TIMEO); ping with -w
# stops at the first such error.
rounds=0; end=$(($(date +%s) + 40))
while :; do
  rounds=$((rounds + 1))
  ping -n -q -c 3 -i 0.2 -w 5 -I "$fou_gwip" "$fou_peer" >"$d/ping" 2>&1 || true
  count_pings
  if [ "$received" -ge 3 ] || [ "$(date +%s)" -ge "$end" ]; then break; fi
  sleep 1
done
i=0; while kill -0 "$tp" 2>/dev/null && [ $i -lt 20 ]; do i=$((i+1)); sleep 0.1; done
kill "$tp" 2>/dev/null || true; wait "$tp" 2>/dev/null || true
# "12:00:00.123456 IP 198.51.100.151.40000 > 198.51.100.152.5555: UDP, length 84" (IPv6: "IP6 2001:db8::1.40000 > …")
out=0; in=0; sample=
while IFS= read -r l; do
  case $l in *"> $fou_remote.$fou_port: UDP"*) out=$((out + 1)); [ -n "$sample" ] || sample=${l#* } ;; esac
  case $l in *"IP $fou_remote."*"> $fou_local.$fou_port: UDP"* | *"IP6 $fou_remote."*"> $fou_local.$fou_port: UDP"*) in=$((in + 1)) ;; esac
done <"$d/cap"
# The sample goes into JSON: no quotes or backslashes.
# shellcheck disable=SC1003 # a backslash inside single quotes, on purpose
case $sample in *[\"\\]*) sample=$(printf '%s' "$sample" | tr -d '"\\') ;; esac
printf '{"from":"%s","to":"%s","sent":%d,"received":%d,"udpToPeer":%d,"udpFromPeer":%d,"sample":"%s","rounds":%d,"measuredAt":"%s"}\n' \
  "$fou_gwip" "$fou_peer" "$sent" "$received" "$out" "$in" "$sample" "$rounds" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [ "$received" -lt 1 ] || [ "$out" -lt 1 ] || [ "$in" -lt 1 ]; then
  printf 'fou-tunnel: tunnel check failed on %s: %s/%s pings from %s to %s answered, UDP/%s packets out %s, in %s\n' \
    "$(hostname)" "$received" "$sent" "$fou_gwip" "$fou_peer" "$fou_port" "$out" "$in" >&2
  cat "$d/ping" "$d/err" >&2; exit 1
fi
