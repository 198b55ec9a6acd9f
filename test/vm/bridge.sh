#!/bin/sh
# Guest side of the harness self-test (mode kernel): a Linux bridge joins the two NICs, so every
# frame that enters one NIC leaves through the other. Runs until the host stops the command.
#   test/vm/run.sh --mode kernel -- sh test/vm/bridge.sh
set -e
a=${IXY_NETDEV0:?no netdev for NIC0 (mode kernel?)}
b=${IXY_NETDEV1:?no netdev for NIC1 (mode kernel?)}
# No IPv6: its neighbour discovery and router solicitations would add frames to the wires.
for n in all default "$a" "$b"; do sysctl -qw "net.ipv6.conf.$n.disable_ipv6=1"; done
ip link add br0 type bridge 2>/dev/null || brctl addbr br0
sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
echo 0 > /sys/class/net/br0/bridge/stp_state
echo 0 > /sys/class/net/br0/bridge/forward_delay
ip link set "$a" master br0 2>/dev/null || brctl addif br0 "$a"
ip link set "$b" master br0 2>/dev/null || brctl addif br0 "$b"
ip link set "$a" up
ip link set "$b" up
ip link set br0 up
echo "bridge: br0 joins $a and $b"
# sleep in the foreground would not see the stop signal; wait for it in the shell
trap 'echo "bridge: stopped"; exit 0' INT TERM
while :; do sleep 1; done
