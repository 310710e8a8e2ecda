package webhook

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeConfigMaps reads ConfigMaps from the API server (RBAC: get on
// configmaps). Only pods with both secretbroker.io/config and
// secretbroker.io/refresh make it read one, at admission, in the pod's
// namespace.
type KubeConfigMaps struct{ Client kubernetes.Interface }

// ConfigMapKey implements ConfigMaps.
func (k KubeConfigMaps) ConfigMapKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	cm, err := k.Client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if v, ok := cm.Data[key]; ok {
		return []byte(v), nil
	}
	if v, ok := cm.BinaryData[key]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("it has no key %q (keys: %s)", key, strings.Join(slices.Sorted(maps.Keys(cm.Data)), ", "))
}
