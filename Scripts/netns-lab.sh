# Sourced by the scripts that need hosts of their own (cluster-check.sh, agents-check.sh): network
# namespaces joined by a bridge that lives in a namespace of its own, so nothing is added to the root
# namespace. The caller sets `tag` (unique to the run), `switch`, `hosts` (names) and `address`
# (an associative array: host -> IPv4 in 198.18.0.0/15, a /24 each); each host gets eth0 with its
# address, and lo, in the namespace "$tag-$host".

lab_up() {
  ip netns add "$switch"
  ip -n "$switch" link add br0 type bridge
  ip -n "$switch" link set br0 up
  local host ns
  for host in "${hosts[@]}"; do
    ns="$tag-$host"
    ip netns add "$ns"
    ip -n "$switch" link add "p-$host" type veth peer name eth0 netns "$ns"
    ip -n "$switch" link set "p-$host" master br0 up
    ip -n "$ns" addr add "${address[$host]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# Removes every namespace lab_up may have made (safe to call when it made only some, or none).
lab_down() {
  local host
  for host in "${hosts[@]}"; do ip netns del "$tag-$host" 2>/dev/null || true; done
  ip netns del "$switch" 2>/dev/null || true
}
