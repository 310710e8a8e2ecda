package awssm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// BenchmarkFetch100 reads 100 secrets through the provider (5
// BatchGetSecretValue calls of 20, in parallel) and, for comparison, with
// 100 sequential GetSecretValue calls on the same client and server. The
// server verifies every request's SigV4 signature; "rtt" adds a simulated
// network round trip to each answer. Compare ns/op of the pairs; calls/op
// is the number of API calls per 100 secrets.
//
//	go test -run '^$' -bench Fetch100 -benchtime 20x ./providers/awssm/
func BenchmarkFetch100(b *testing.B) {
	for _, rtt := range []time.Duration{0, 5 * time.Millisecond} {
		s := fake(b)
		s.SetLatency(rtt)
		var raws []string
		for i := range 100 {
			name := fmt.Sprintf("bench/s%03d", i)
			s.CreateString(name, fakeValue("b"))
			raws = append(raws, "aws-sm://"+name)
		}
		rs := refs(b, raws...)
		p := newProvider(b, s, nil, nil)
		ctx := context.Background()

		b.Run(fmt.Sprintf("rtt=%s/provider", rtt), func(b *testing.B) {
			s.ResetCalls()
			for b.Loop() {
				for _, r := range p.Fetch(ctx, rs) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			b.ReportMetric(float64(s.Calls(""))/float64(b.N), "calls/op")
		})
		b.Run(fmt.Sprintf("rtt=%s/sequential-GetSecretValue", rtt), func(b *testing.B) {
			s.ResetCalls()
			for b.Loop() {
				for _, r := range rs {
					_, err := p.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.Path)})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(s.Calls(""))/float64(b.N), "calls/op")
		})
	}
}

// BenchmarkFetch100Ratio alternates the two ways within each iteration, so
// load from other processes on a shared machine hits both alike, and
// reports their wall-time ratio (provider / sequential; lower is better).
func BenchmarkFetch100Ratio(b *testing.B) {
	s := fake(b)
	var raws []string
	for i := range 100 {
		name := fmt.Sprintf("bench/s%03d", i)
		s.CreateString(name, fakeValue("b"))
		raws = append(raws, "aws-sm://"+name)
	}
	rs := refs(b, raws...)
	p := newProvider(b, s, nil, nil)
	ctx := context.Background()
	var batched, sequential time.Duration
	var batchedCalls int
	for b.Loop() {
		s.ResetCalls()
		t0 := time.Now()
		for _, r := range p.Fetch(ctx, rs) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		batched += time.Since(t0)
		batchedCalls += s.Calls("")
		t0 = time.Now()
		for _, r := range rs {
			if _, err := p.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.Path)}); err != nil {
				b.Fatal(err)
			}
		}
		sequential += time.Since(t0)
	}
	b.ReportMetric(float64(batchedCalls)/float64(b.N), "calls/op")
	b.ReportMetric(float64(batched.Microseconds())/float64(b.N), "batched-µs/op")
	b.ReportMetric(float64(sequential.Microseconds())/float64(b.N), "sequential-µs/op")
	b.ReportMetric(float64(batched)/float64(sequential), "ratio")
}
