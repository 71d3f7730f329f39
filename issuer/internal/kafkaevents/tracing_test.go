package kafkaevents

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/jotguard/jotguard/sdk/sdktest"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// recordSpans makes the global TracerProvider record into the returned
// recorder, for Publishers made after the call, until the test ends.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, trace.Tracer) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	return spans, tp.Tracer("test")
}

// sendSpans are the recorded "send <topic>" spans.
func sendSpans(spans *tracetest.SpanRecorder, topic string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "send "+topic {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value
		}
	}
	return attribute.Value{}
}

// recordTrace is the trace context in a record's headers.
func recordTrace(m kafka.Message) trace.SpanContext {
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), headerCarrier{&m.Headers}))
}

func traces(entries []auth.OutboxEntry) []map[string]string {
	var out []map[string]string
	for _, e := range entries {
		out = append(out, e.Trace)
	}
	return out
}

// sameSpan: a and b name the same span (one may be remote, the other not).
func sameSpan(a, b trace.SpanContext) bool {
	return a.IsValid() && a.TraceID() == b.TraceID() && a.SpanID() == b.SpanID()
}

// An event sent at once carries the context of its send span, a child of
// the request's; an event queued in the outbox (Kafka down) carries the
// same, stored with the entry, and the relay sends it later under a span of
// its own linked to it. So every event names the request that caused it,
// however it reached Kafka: as a SET, or in a batch of events of that one
// request.
func TestTraceContextTravelsWithEvents(t *testing.T) {
	for _, sets := range []bool{false, true} {
		t.Run(Config{SETs: sets}.format(), func(t *testing.T) { testTraceContext(t, sets) })
	}
}

func testTraceContext(t *testing.T, sets bool) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	spans, tracer := recordSpans(t)
	outbox := newOutbox(t)
	signer := newSigner(t)
	since := time.Now().Add(-2 * time.Second)
	queuedSub, directSub := "queued-"+rand.Text(), "direct-"+rand.Text()

	ctx, request := tracer.Start(t.Context(), "POST /logout")
	down := newPublisher(t, Config{Brokers: []string{closedPort(t)}, Topic: topic, SETs: sets, AckTimeout: 200 * time.Millisecond},
		signer, outbox)
	if err := down.Publish(ctx, newEvent(queuedSub, revocation.ReasonLogout)); err != nil {
		t.Fatalf("Publish with Kafka down: %v", err)
	}
	entries, err := outbox.Batch(t.Context(), 10)
	if err != nil || len(entries) != 1 || entries[0].Trace["traceparent"] == "" {
		t.Fatalf("outbox: %d entries (%v), the first's trace context %v; want one entry with a traceparent",
			len(entries), err, traces(entries))
	}
	up := newPublisher(t, Config{Brokers: brokers, Topic: topic, SETs: sets, RelayInterval: 100 * time.Millisecond}, signer, outbox)
	if err := up.Publish(ctx, newEvent(directSub, revocation.ReasonLogout)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	request.End()
	relayUntilEmpty(t, up)

	sends := sendSpans(spans, topic)
	if len(sends) != 3 {
		t.Fatalf("%d send spans, want 3 (queued, direct, relayed)", len(sends))
	}
	queuedSend, directSend, relaySend := sends[0], sends[1], sends[2]
	for name, s := range map[string]sdktrace.ReadOnlySpan{"queued": queuedSend, "direct": directSend} {
		if s.Parent().SpanID() != request.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("%s send span: parent %v, kind %v; want a producer span, child of the request", name, s.Parent(), s.SpanKind())
		}
	}
	if n := attr(queuedSend, "jotguard.revocation.outboxed").AsInt64(); n != 1 {
		t.Errorf("queued send span: outboxed = %d, want 1", n)
	}
	if relaySend.Parent().IsValid() || !attr(relaySend, "jotguard.revocation.relay").AsBool() ||
		len(relaySend.Links()) != 1 || !sameSpan(relaySend.Links()[0].SpanContext, queuedSend.SpanContext()) {
		t.Errorf("relay send span: parent %v, links %v; want a root span linked to the queued event's send span",
			relaySend.Parent(), relaySend.Links())
	}

	msgs := readSince(t, brokers, topic, since)
	wantCT := map[bool]string{true: revocation.ContentType, false: revocation.BatchContentType}[sets]
	for sub, want := range map[string]trace.SpanContext{queuedSub: queuedSend.SpanContext(), directSub: directSend.SpanContext()} {
		recs := carrying(t, signer.JWKS(), msgs, sub)
		if len(recs) != 1 {
			t.Fatalf("%d records carry an event of %s, want 1", len(recs), sub)
		}
		got := recordTrace(recs[0])
		if !sameSpan(got, want) || !got.IsSampled() {
			t.Errorf("record of %s carries trace context %v, want its first send span's %v", sub, got, want)
		}
		if ct := (headerCarrier{&recs[0].Headers}).Get("content-type"); ct != wantCT {
			t.Errorf("record of %s: content-type %q, want %q", sub, ct, wantCT)
		}
	}
}

// A batch of the events of many requests carries the context of a send
// span of its own, a root linked to each request's send span.
func TestBatchOfManyRequestsLinksThemAll(t *testing.T) {
	brokers := strings.Split(sdktest.RequireEnv(t, "JOTGUARD_KAFKA_BROKERS"), ",")
	topic := sdktest.RequireEnv(t, "JOTGUARD_REVOCATION_TOPIC")
	spans, tracer := recordSpans(t)
	signer := newSigner(t)
	since := time.Now().Add(-2 * time.Second)
	p := newPublisher(t, Config{Brokers: brokers, Topic: topic, BatchWait: time.Second, AckTimeout: 10 * time.Second}, signer, newOutbox(t))
	first := newEvent("first-"+rand.Text(), revocation.ReasonLogout)
	if err := p.Publish(t.Context(), first); err != nil { // written at once: the next wait a second
		t.Fatal(err)
	}
	subs := []string{"a-" + rand.Text(), "b-" + rand.Text(), "c-" + rand.Text()}
	var requests []trace.SpanContext
	var wg sync.WaitGroup
	for _, sub := range subs {
		ctx, request := tracer.Start(t.Context(), "POST /logout")
		requests = append(requests, request.SpanContext())
		wg.Go(func() {
			defer request.End()
			if err := p.Publish(ctx, newEvent(sub, revocation.ReasonLogout)); err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	wg.Wait()
	if st := p.Stats(); st.Records != 2 {
		t.Fatalf("Stats() = %+v, want the three requests' events in one batch, after the first", st)
	}
	var batch trace.SpanContext
	msgs := readSince(t, brokers, topic, since)
	for _, sub := range subs {
		recs := carrying(t, signer.JWKS(), msgs, sub)
		if len(recs) != 1 || (batch.IsValid() && !recordTrace(recs[0]).Equal(batch)) {
			t.Fatalf("the events of the three requests are in %d records, want them in one batch", len(recs))
		}
		batch = recordTrace(recs[0])
	}
	var sendOf []trace.SpanContext // the requests' send spans
	var batchSpan sdktrace.ReadOnlySpan
	for _, s := range sendSpans(spans, topic) {
		switch {
		case sameSpan(s.SpanContext(), batch):
			batchSpan = s
		case slices.ContainsFunc(requests, func(r trace.SpanContext) bool { return r.SpanID() == s.Parent().SpanID() }):
			sendOf = append(sendOf, s.SpanContext())
		}
	}
	if batchSpan == nil || batchSpan.Parent().IsValid() || len(batchSpan.Links()) != 3 || len(sendOf) != 3 {
		t.Fatalf("the batch's span %v, the requests' send spans %v: want a root span linked to the three", batchSpan, sendOf)
	}
	for _, l := range batchSpan.Links() {
		if !slices.ContainsFunc(sendOf, func(s trace.SpanContext) bool { return sameSpan(l.SpanContext, s) }) {
			t.Errorf("the batch's span links to %v, not a request's send span", l.SpanContext)
		}
	}
}

// carrying are the records of msgs that carry an event of sub.
func carrying(t *testing.T, jwks []byte, msgs []kafka.Message, sub string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for _, m := range msgs {
		if events, _ := eventsOf(t, jwks, []kafka.Message{m}, sub); len(events) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// Without a recording TracerProvider nothing is added: no header, no
// trace context in the outbox.
func TestUntracedEventsCarryNoTraceContext(t *testing.T) {
	outbox := newOutbox(t)
	p := newPublisher(t, Config{Brokers: []string{closedPort(t)}, Topic: "t", AckTimeout: 200 * time.Millisecond},
		newSigner(t), outbox)
	if err := p.Publish(t.Context(), newEvent("u", revocation.ReasonLogout)); err != nil {
		t.Fatal(err)
	}
	entries, err := outbox.Batch(t.Context(), 10)
	if err != nil || len(entries) != 1 || entries[0].Trace != nil {
		t.Fatalf("outbox: %d entries (%v) with trace contexts %v; want one entry without", len(entries), err, traces(entries))
	}
	if h := withTrace(nil, trace.SpanContext{}); len(h) != 0 {
		t.Fatalf("headers %v for no span context", h)
	}
}
