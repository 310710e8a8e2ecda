// Package webhook is the Kubernetes mutating admission webhook: pods that
// opt in with secretbroker.io/ annotations get inject (copied into a memory
// volume by an init container, with no shell) in front of their command,
// and with secretbroker.io/refresh the broker as a native sidecar. Only
// references enter the pod spec, never a value. README.md beside this file
// documents the annotations and the mutation.
package webhook
