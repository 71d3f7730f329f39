package kafkafeed

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jotguard/jotguard/sdk"
	"github.com/jotguard/jotguard/sdk/revocation"
	"go.opentelemetry.io/otel/trace"
)

// SetDiscoverEvery shortens the partition discovery interval for a test.
func SetDiscoverEvery(d time.Duration) (restore func()) {
	old := discoverEvery
	discoverEvery = d
	return func() { discoverEvery = old }
}

// Why a batch is skipped, and the zstd window limit, for tests.
var (
	ErrBatchTooLarge = errBatchTooLarge
	ErrBatchCorrupt  = errBatchCorrupt
	ErrBatchFormat   = errBatchFormat
)

// ZstdWindow is the most a zstd decoder of a Feed holds.
var ZstdWindow = windowSize(zstdWindowDescriptor)

// DecodedBatch is what a Feed makes of one record batch.
type DecodedBatch struct {
	First, Last int64
	Offsets     []int64
	Values      [][]byte
	Senders     []trace.SpanContext // the trace context in each record's headers
	Err         error
}

// DecodeRecords reads records, the records field of a fetch response, as
// a Feed does, and decodes every batch in it.
func DecodeRecords(records []byte) []DecodedBatch {
	n := int64(len(records))
	w := &wire{r: &io.LimitedReader{R: bytes.NewReader(records), N: n}}
	var out []DecodedBatch
	for _, b := range (&fetchRequest{maxBatch: MaxBatchBytes}).readBatches(w, n) {
		recs, err := b.records(context.Background())
		d := DecodedBatch{First: b.base, Last: b.last(), Err: err}
		for _, r := range recs {
			d.Offsets = append(d.Offsets, r.offset)
			d.Values = append(d.Values, r.value)
			d.Senders = append(d.Senders, senderContext(r.headers))
		}
		out = append(out, d)
	}
	return out
}

// Ingest does what a Feed does with one record value it read: verify it
// with trust and apply its events. For benchmarks, without a broker.
func (f *Feed) Ingest(ctx context.Context, trust sdk.EventTrust, value []byte) {
	if f.events == nil {
		f.events, f.keys = revocation.NewRecordVerifier(trust), trust.Keys
	}
	f.apply(ctx, 0, record{value: value})
}

// SenderContext is the trace context in a record's headers as stored.
var SenderContext = senderContext

// NewBackOff is the Feed's retry backoff.
func NewBackOff() *backoff.ExponentialBackOff { b := backOff; return &b }
