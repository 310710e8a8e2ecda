package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Registry reads image configs with go-containerregistry, authenticating
// with the pod's imagePullSecrets (read from the API server) and then the
// webhook's own keychain. Configs are cached by digest: a tag is resolved
// with one HEAD request, and a digest seen before costs nothing more.
type Registry struct {
	Client   kubernetes.Interface // reads imagePullSecrets; nil: none are read
	Keychain authn.Keychain       // the webhook's own; nil: authn.DefaultKeychain
	Options  []remote.Option      // extra options (transport) for tests
	Timeout  time.Duration        // per lookup; 0: 5s

	mu    sync.Mutex
	cache map[string]*v1.Config // digest -> config
	hits  func(hit bool)
}

// OnLookup sets a function told whether each lookup hit the cache.
func (r *Registry) OnLookup(f func(hit bool)) { r.hits = f }

// Entrypoint implements ImageConfigs.
func (r *Registry) Entrypoint(ctx context.Context, image, namespace string, pullSecrets []string) ([]string, []string, error) {
	cfg, err := r.Config(ctx, image, namespace, pullSecrets)
	if err != nil {
		return nil, nil, err
	}
	return cfg.Entrypoint, cfg.Cmd, nil
}

// Config returns the image's config.
func (r *Registry) Config(ctx context.Context, image, namespace string, pullSecrets []string) (*v1.Config, error) {
	t := r.Timeout
	if t == 0 {
		t = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	kc, err := r.keychain(ctx, namespace, pullSecrets)
	if err != nil {
		return nil, err
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}, r.Options...)
	digest := ""
	if d, ok := ref.(name.Digest); ok {
		digest = d.DigestStr()
	} else {
		desc, err := remote.Head(ref, opts...)
		if err != nil {
			return nil, err
		}
		digest = desc.Digest.String()
	}
	key := ref.Context().String() + "@" + digest
	r.mu.Lock()
	cfg, ok := r.cache[key]
	r.mu.Unlock()
	if r.hits != nil {
		r.hits(ok)
	}
	if ok {
		return cfg, nil
	}
	img, err := remote.Image(ref.Context().Digest(digest), opts...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = &cf.Config
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]*v1.Config{}
	}
	r.cache[key] = cfg
	r.mu.Unlock()
	return cfg, nil
}

func (r *Registry) keychain(ctx context.Context, namespace string, pullSecrets []string) (authn.Keychain, error) {
	own := r.Keychain
	if own == nil {
		own = authn.DefaultKeychain
	}
	if len(pullSecrets) == 0 || r.Client == nil {
		return own, nil
	}
	var secrets []corev1.Secret
	for _, n := range pullSecrets {
		s, err := r.Client.CoreV1().Secrets(namespace).Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("imagePullSecret %s/%s: %w", namespace, n, err)
		}
		secrets = append(secrets, *s)
	}
	pod, err := kauth.NewFromPullSecrets(ctx, secrets)
	if err != nil {
		return nil, err
	}
	return authn.NewMultiKeychain(pod, own), nil
}
