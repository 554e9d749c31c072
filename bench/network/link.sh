#!/usr/bin/env bash
# Three hosts on one machine, joined by shaped links, for the deploy benchmark:
#
#   skiffb-cli (10.77.1.2) ──veth── (10.77.1.1) skiffb-srv (10.77.2.1) ──veth── (10.77.2.2) skiffb-agt
#
# The server and its blob store (and, for the baseline, the image registry) live in skiffb-srv; the CLI
# (and the image build) in skiffb-cli; the agent (and the image pull and run) in skiffb-agt. Each veth end
# has a tbf qdisc, so every byte between two parts crosses a link of RATE in each direction. All addresses
# are private to these namespaces. The agent also reaches 10.77.1.1 (through skiffb-srv, over its own link),
# so a service on that one address (S3, whose pre-signed URLs name one endpoint) serves the CLI and the agent.
#
#   bench/network/link.sh up [RATE]    # default 100mbit; e.g. 20mbit, 1gbit
#   bench/network/link.sh down
set -euo pipefail

cli=skiffb-cli
srv=skiffb-srv
agt=skiffb-agt

down() {
  for ns in "$cli" "$srv" "$agt"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

shape() {
  local ns=$1 dev=$2 rate=$3
  # tbf: a token bucket at RATE; burst sized for the rate (at least 32 KiB), and a queue of 50 ms.
  ip netns exec "$ns" tc qdisc replace dev "$dev" root tbf rate "$rate" burst 64kbit latency 50ms
}

up() {
  local rate=${1:-100mbit}
  down
  for ns in "$cli" "$srv" "$agt"; do
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
  done

  ip link add skb-cli type veth peer name skb-srv1
  ip link set skb-cli netns "$cli"
  ip link set skb-srv1 netns "$srv"
  ip link add skb-agt type veth peer name skb-srv2
  ip link set skb-agt netns "$agt"
  ip link set skb-srv2 netns "$srv"

  ip netns exec "$cli" ip addr add 10.77.1.2/24 dev skb-cli
  ip netns exec "$srv" ip addr add 10.77.1.1/24 dev skb-srv1
  ip netns exec "$srv" ip addr add 10.77.2.1/24 dev skb-srv2
  ip netns exec "$agt" ip addr add 10.77.2.2/24 dev skb-agt
  for pair in "$cli skb-cli" "$srv skb-srv1" "$srv skb-srv2" "$agt skb-agt"; do
    set -- $pair
    ip netns exec "$1" ip link set "$2" up
    shape "$1" "$2" "$rate"
  done
  ip netns exec "$agt" ip route add 10.77.1.1/32 via 10.77.2.1 dev skb-agt
}

case "${1:-}" in
  up) up "${2:-100mbit}" ;;
  down) down ;;
  *) echo "usage: $0 up [RATE] | down" >&2; exit 2 ;;
esac
