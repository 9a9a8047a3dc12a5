#!/usr/bin/env bash
# make demo: start a 2-node lab, install Weft from manifests/ as a user would,
# enroll the sample namespace, show one request crossing the mesh in mTLS,
# then add a waypoint and show an L7 policy allowing GET and denying DELETE.
# Run from the repository root after `make build lab-build`.
set -euo pipefail

BIN=_output/bin
K="_output/k8s/kubectl"
LAB=${WEFT_LAB:-weft}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
t0=$(date +%s)

step "Assembling the CRDs from the pinned istio.io/api and gateway-api modules"
"$BIN/weft-build" crds

step "Starting a 2-node lab cluster '$LAB' (real kube-apiserver, etcd, controllers, kube-proxy, CoreDNS)"
if "$BIN/weft-lab" status --name "$LAB" >/dev/null 2>&1; then
  echo "lab '$LAB' is already running; reusing it"
else
  "$BIN/weft-lab" up --name "$LAB" --nodes 2
fi
KUBECONFIG=$("$BIN/weft-lab" kubeconfig --name "$LAB")
export KUBECONFIG
"$K" get nodes -o wide

step "Installing Weft: kubectl apply -k manifests/"
"$K" apply --server-side -k manifests/base/crds >/dev/null
"$K" wait --for=condition=Established crd --all --timeout=60s >/dev/null
"$K" apply --server-side -k manifests/
"$K" -n weft-system rollout status deploy/istiod-lite --timeout=180s
"$K" -n weft-system rollout status ds/weft-cni-agent --timeout=180s
"$K" -n weft-system rollout status ds/ztunnel --timeout=180s

step "Deploying the sample apps in namespace demo"
"$K" apply --server-side -k manifests/samples/
"$K" -n demo rollout status deploy/echo --timeout=120s
"$K" -n demo rollout status deploy/client --timeout=120s
"$K" -n demo get pods -o wide

step "Enrolling the namespace: kubectl label ns demo istio.io/dataplane-mode=ambient"
"$K" label ns demo istio.io/dataplane-mode=ambient --overwrite
"$K" -n demo wait pod --all --timeout=60s \
  --for=jsonpath='{.metadata.annotations.ambient\.istio\.io/redirection}'=enabled

client_node=$("$K" -n demo get pods -l app=client -o jsonpath='{.items[0].spec.nodeName}')
step "Sending requests from the client (on $client_node) to http://echo.demo:8080/ until one crosses nodes"
reply="" server_node=""
for i in $(seq 1 20); do
  if reply=$("$K" -n demo exec deploy/client -- /usr/local/bin/echo client --url http://echo.demo:8080/ 2>&1); then
    server_node=$(printf '%s' "$reply" | grep -o '"node":"[^"]*"' | head -n 1 | cut -d'"' -f4)
    [ -n "$server_node" ] && [ "$server_node" != "$client_node" ] && break
  fi
  sleep 0.5
done
echo "$reply"
case "$reply" in
  *'"status":200'*) ;;
  *) echo "the request through the mesh failed; see: $K -n weft-system logs -l app=ztunnel" >&2; exit 1 ;;
esac

step "ztunnel's view: the connection, with the client's SPIFFE identity"
"$K" -n weft-system logs -l app=ztunnel --tail=200 2>/dev/null | grep '"connection complete"' | tail -n 2 || true

step "The metrics line that counted it (istio_tcp_connections_opened_total, mutual_tls)"
for zt in $("$K" -n weft-system get pods -l app=ztunnel -o name); do
  echo "# ${zt#pod/}"
  "$BIN/weft-lab" exec --name "$LAB" -n weft-system "${zt#pod/}" -- \
    curl -sf --max-time 5 http://127.0.0.1:15020/metrics |
    grep '^istio_tcp_connections_opened_total' | grep 'mutual_tls' | head -n 2 || true
done

step "What ztunnel on $server_node knows (weftctl ztunnel-config workloads)"
"$BIN/weftctl" --kubeconfig "$KUBECONFIG" ztunnel-config workloads --node "$server_node" || true

step "Adding L7: weftctl waypoint apply -n demo --enroll-namespace --wait"
"$BIN/weftctl" --kubeconfig "$KUBECONFIG" waypoint apply -n demo --enroll-namespace --wait

step "An AuthorizationPolicy on the waypoint for Service echo: GET allowed, anything else denied"
"$K" apply -f - <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: echo-get-only
  namespace: demo
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: echo
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
YAML
call() { "$K" -n demo exec deploy/client -- /usr/local/bin/echo client --method "$1" --url http://echo.demo:8080/l7 2>&1 || true; }
for _ in $(seq 1 100); do
  denied=$(call DELETE)
  case "$denied" in *'"status":403'*) break ;; esac
  sleep 0.2
done
allowed=$(call GET)
echo "GET    -> $(printf '%s' "$allowed" | grep -o '"status":[0-9]*' | head -n 1)"
echo "DELETE -> $(printf '%s' "$denied" | grep -o '"status":[0-9]*' | head -n 1)"
case "$allowed$denied" in
  *'"status":200'*'"status":403'*) ;;
  *) echo "the waypoint did not apply the policy; see: $K -n demo logs deploy/waypoint" >&2; exit 1 ;;
esac
wp=$("$K" -n demo get pods -l gateway.networking.k8s.io/gateway-name=waypoint -o name | head -n 1)
echo "# the waypoint's L7 metrics (${wp#pod/}):"
"$BIN/weft-lab" exec --name "$LAB" -n demo "${wp#pod/}" -- \
  curl -sf --max-time 5 http://127.0.0.1:15020/metrics |
  grep '^istio_requests_total' | grep -E 'response_code="(200|403)"' | head -n 4 || true

printf '\n\033[1mDone in %ss.\033[0m\n' "$(( $(date +%s) - t0 ))"
cat <<MSG
The request above went from the client pod on $client_node to an echo pod on
$server_node inside an HBONE tunnel (HTTP/2 CONNECT over mutual TLS); the
server's ztunnel saw the client's identity spiffe://cluster.local/ns/demo/sa/client
and counted the connection as mutual_tls. Then a waypoint took the
namespace's L7 traffic and enforced an AuthorizationPolicy per HTTP method.
The apps were not restarted.

Try next:
  export KUBECONFIG=$KUBECONFIG
  $K -n demo get pods -o wide
  $BIN/weftctl ztunnel-config workloads
  $BIN/weftctl ztunnel-config connections -A
  $BIN/weftctl check
  $BIN/weftctl waypoint list -A
  $BIN/weftctl waypoint delete -n demo waypoint   # back to L4, no restarts
  $K label ns demo istio.io/dataplane-mode-      # leave the mesh, no restarts
When you are done: make demo-down
MSG
