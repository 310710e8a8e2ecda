package pipeline

import (
	"context"
	"sync"

	"github.com/secretbroker/secretbroker/providers"
)

// Opener returns a providers.Opener that builds each provider once and
// reuses it on later calls, for callers that resolve again and again (the
// broker). Providers it opens are the ones Lifecycles and AppEnv see.
func (r *Run) Opener() providers.Opener {
	var mu sync.Mutex
	return func(ctx context.Context, scheme string) (providers.Provider, error) {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := r.opened[scheme]; ok {
			return p, nil
		}
		return r.open(ctx, scheme)
	}
}
