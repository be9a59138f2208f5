//go:build tools

// Package controlplane pins the Go programs of the local control plane at the
// oldest supported Kubernetes minor (1.31), for `hack/controlplane/build.sh 1.31`
// and MODELLOOP_KUBE_VERSION=1.31. Same binaries as ../tools.go, older versions.
//
// What the Go module proxy serves decides the versions: k8s.io/kubernetes v1.31.14
// (the newest 1.31 patch there) with its staging modules at v0.31.14, except
// endpointslice, kube-controller-manager and kube-scheduler (v0.31.13) and
// kube-proxy (v0.31.11), of which the proxy has no v0.31.14; etcd 3.5.14 (the
// client version Kubernetes 1.31 requires); kwok v0.6.1 (built on k8s.io/* v0.30)
// with easycel v0.6.0, as v0.5.0 does not compile against the cel-go 1.31 needs.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
