package kafkafeed_test

import (
	"bytes"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"go.opentelemetry.io/otel/trace"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
)

// The trace context a record carries in its headers, as kafka-go's
// producer encodes them, is what the Feed links its span to; headers
// without one, or with a broken one, give none, and never stop the record.
func TestSenderContextFromHeaders(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	want := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled, Remote: true,
	})
	state, err := trace.ParseTraceState("vendor=x")
	if err != nil {
		t.Fatal(err)
	}
	withState := want.WithTraceState(state)
	h := func(kv ...string) []protocol.Header {
		var out []protocol.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, protocol.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	records := []struct {
		name    string
		headers []protocol.Header
		want    trace.SpanContext
	}{
		{"traceparent after content-type", h("content-type", "application/secevent+jwt", "traceparent", parent), want},
		{"with tracestate", h("traceparent", parent, "tracestate", "vendor=x"), withState},
		{"no headers", nil, trace.SpanContext{}},
		{"no trace context", h("content-type", "application/secevent+jwt"), trace.SpanContext{}},
		{"broken traceparent", h("traceparent", "00-zz-00f067aa0ba902b7-01"), trace.SpanContext{}},
		{"all-zero trace id", h("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), trace.SpanContext{}},
	}
	for _, codec := range []kafka.Compression{0, kafka.Gzip, kafka.Zstd} {
		var recs []protocol.Record
		for i, r := range records {
			recs = append(recs, protocol.Record{Offset: int64(i), Value: protocol.NewBytes([]byte(r.name)), Headers: r.headers})
		}
		set := protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(recs...)}
		if codec != 0 {
			set.Attributes = protocol.Attributes(codec)
		}
		var b bytes.Buffer
		if _, err := set.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		batches := kafkafeed.DecodeRecords(b.Bytes()[4:]) // after the records field's length
		if len(batches) != 1 || batches[0].Err != nil || len(batches[0].Senders) != len(records) {
			t.Fatalf("%v: decoded %+v, want one batch of %d records", codec, batches, len(records))
		}
		for i, r := range records {
			if got := batches[0].Senders[i]; !got.Equal(r.want) {
				t.Errorf("%v, %s: sender context %v, want %v", codec, r.name, got, r.want)
			}
			if string(batches[0].Values[i]) != r.name {
				t.Errorf("%v, %s: value %q: the headers must not change what the record holds", codec, r.name, batches[0].Values[i])
			}
		}
	}
}

// Headers cut short or lying about their lengths give no context and no
// panic.
func TestSenderContextFromBrokenHeaders(t *testing.T) {
	for _, raw := range [][]byte{
		{}, {0x01}, {0x02, 0x16}, {0x7f}, {0x02, 0x02, 'k'}, {0x02, 0x7e, 'k', 0x02, 'v'},
		append([]byte{0x02, 0x16}, "traceparent"...), // a key and no value
	} {
		if sc := kafkafeed.SenderContext(raw); sc.IsValid() {
			t.Errorf("headers %x: context %v, want none", raw, sc)
		}
	}
}
