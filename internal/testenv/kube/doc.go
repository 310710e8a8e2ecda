// Package kube runs the admission webhook (package webhook) against a real
// kube-apiserver and etcd started by controller-runtime's envtest, and
// applies every manifest under deploy/kubernetes and examples/k8s to it with
// strict server-side validation. It is a module of its own so that envtest
// stays out of the main module. The binaries come from
// scripts/kube-assets.sh (built from the Go module proxy and cached by
// version); KUBEBUILDER_ASSETS overrides where they are looked for. Without
// them the tests skip, except under CI=true, where they fail.
package kube
