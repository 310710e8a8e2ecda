package broker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretbroker/secretbroker/providers"
)

// metrics are the broker's Prometheus series. None carries a value: labels
// are provider schemes, failure kinds and secret (file) names.
type metrics struct {
	b       *Broker
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
	changes *prometheus.CounterVec
	cycles  prometheus.Counter
	bytes   prometheus.Counter

	ageDesc, leaseDesc, readyDesc *prometheus.Desc
}

func newMetrics(b *Broker) *metrics {
	return &metrics{
		b: b,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "secretbroker_fetch_duration_seconds", Help: "Time one provider took to answer one batch of references.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretbroker_fetch_errors_total", Help: "Failed reads by provider and reason (not_found, denied, unreachable, timeout, invalid, misconfigured, failed; tmpfs/write).",
		}, []string{"provider", "reason"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretbroker_file_changes_total", Help: "Refreshes that wrote a file because its digest changed.",
		}, []string{"secret"}),
		cycles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "secretbroker_refresh_cycles_total", Help: "Refresh cycles run.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "secretbroker_written_bytes_total", Help: "Bytes of secret files written (0 per cycle when nothing changed).",
		}),
		ageDesc:   prometheus.NewDesc("secretbroker_secret_last_success_age_seconds", "Seconds since each secret was last read successfully (staleness).", []string{"secret"}, nil),
		leaseDesc: prometheus.NewDesc("secretbroker_lease_ttl_remaining_seconds", "Lease time left for leased secrets, as of the last read.", []string{"secret"}, nil),
		readyDesc: prometheus.NewDesc("secretbroker_ready", "1 when /readyz answers 200.", nil, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.latency.Describe(ch)
	m.errors.Describe(ch)
	m.changes.Describe(ch)
	m.cycles.Describe(ch)
	m.bytes.Describe(ch)
	ch <- m.ageDesc
	ch <- m.leaseDesc
	ch <- m.readyDesc
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.latency.Collect(ch)
	m.errors.Collect(ch)
	m.changes.Collect(ch)
	m.cycles.Collect(ch)
	m.bytes.Collect(ch)
	ready, _ := m.b.Ready()
	r := 0.0
	if ready {
		r = 1
	}
	ch <- prometheus.MustNewConstMetric(m.readyDesc, prometheus.GaugeValue, r)
	now := m.b.now()
	for _, it := range m.b.state.Load().items {
		for _, name := range it.secrets {
			if !it.lastSuccess.IsZero() {
				ch <- prometheus.MustNewConstMetric(m.ageDesc, prometheus.GaugeValue, now.Sub(it.lastSuccess).Seconds(), name)
			}
			if it.leaseTTL > 0 {
				left := it.leaseTTL - now.Sub(it.fetchedAt)
				ch <- prometheus.MustNewConstMetric(m.leaseDesc, prometheus.GaugeValue, max(left, 0).Seconds(), name)
			}
		}
	}
}

// timedOpener wraps each provider so every Fetch is timed by scheme.
func (m *metrics) timedOpener(open providers.Opener) providers.Opener {
	return func(ctx context.Context, scheme string) (providers.Provider, error) {
		p, err := open(ctx, scheme)
		if err != nil {
			return nil, err
		}
		obs := m.latency.WithLabelValues(scheme)
		return providers.ProviderFunc(func(ctx context.Context, refs []providers.Ref) []providers.Result {
			start := time.Now()
			defer func() { obs.Observe(time.Since(start).Seconds()) }()
			return p.Fetch(ctx, refs)
		}), nil
	}
}
