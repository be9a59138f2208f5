//go:build tools

// Package controlplane pins the Go programs that make up ModelLoop's local
// control plane (tests and demo). Nothing here is ModelLoop code: the module
// exists so one `go build` compiles every binary with shared dependencies.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
