// Command kube-proxy is the upstream Service proxy: it makes the cluster DNS Service and the
// API server's `kubernetes` Service reachable from pods, as on any cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
