package kafkafeed

import (
	"context"
	"encoding/binary"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/jotguard/jotguard/sdk/revocation"
)

// Tracing. A Feed traces through OpenTelemetry's global TracerProvider
// (as it is when New makes the Feed, or the one installed first after
// that), which is a no-op one unless the application installs one: the sdk
// never exports anything by itself. With a provider that records, each record
// the Feed applies is a consumer span named SpanApplied, a root span
// linked to the span that sent it: the issuer puts that span's W3C trace
// context (traceparent, tracestate) in the record's headers. One span per
// record, not per Kafka record batch. A record is a SET, one event whose
// link leads to its logout's trace, or a signed batch of events of many
// logouts, whose link leads to the issuer's span that wrote the batch,
// itself linked to each of those logouts. With the no-op provider a
// record costs one no-op span start and its headers are not read.

// SpanApplied is the name of the span of a revocation record applied.
const SpanApplied = "revocation applied"

func newTracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer("github.com/jotguard/jotguard/sdk/kafkafeed")
}

// appliedOptions start a record's span: made once, as a record that is not
// traced should cost next to nothing.
var appliedOptions = []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindConsumer)}

// startApplied starts the span of the record at offset of partition.
func (f *Feed) startApplied(ctx context.Context, partition int, offset int64, headers []byte) trace.Span {
	_, span := f.tracer.Start(ctx, SpanApplied, appliedOptions...)
	if !span.IsRecording() {
		return span
	}
	span.SetAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"), semconv.MessagingDestinationName(f.cfg.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(partition)), semconv.MessagingKafkaOffset(int(offset)))
	if sc := senderContext(headers); sc.IsValid() {
		span.AddLink(trace.Link{SpanContext: sc})
	}
	return span
}

// endApplied ends a record's span: with its events when it verified
// (applied of them new to the set, the others duplicates), else failed
// with err.
func endApplied(span trace.Span, events []revocation.Event, applied int, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorType(err))
		case len(events) == 1: // a SET, or a batch of one
			e := events[0]
			scope := "user"
			switch {
			case e.SessionID != "":
				scope = "session"
			case e.TokenID != "":
				scope = "token"
			}
			span.SetAttributes(semconv.MessagingMessageID(e.ID), attribute.String("jotguard.revocation.scope", scope),
				attribute.String("jotguard.revocation.reason", e.Reason), attribute.Bool("jotguard.revocation.duplicate", applied == 0))
		default: // a batch: its events, of many logouts
			span.SetAttributes(semconv.MessagingBatchMessageCount(len(events)),
				attribute.Int("jotguard.revocation.duplicates", len(events)-applied))
		}
	}
	span.End()
}

// senderContext is the W3C trace context in a record's headers, as stored
// (a varint count, then each header's key and value, varint-length
// prefixed); not valid when there is none or the headers do not parse.
func senderContext(headers []byte) trace.SpanContext {
	c := propagation.MapCarrier{}
	n, l := binary.Varint(headers)
	if l <= 0 || n < 0 {
		return trace.SpanContext{}
	}
	headers = headers[l:]
	field := func() ([]byte, bool) {
		size, l := binary.Varint(headers)
		if l <= 0 || size > int64(len(headers)-l) {
			return nil, false
		}
		headers = headers[l:]
		if size < 0 { // null
			return nil, true
		}
		b := headers[:size]
		headers = headers[size:]
		return b, true
	}
	for range min(n, 64) {
		k, ok := field()
		if !ok {
			return trace.SpanContext{}
		}
		v, ok := field()
		if !ok {
			return trace.SpanContext{}
		}
		if key := string(k); key == "traceparent" || key == "tracestate" {
			c[key] = string(v)
		}
	}
	if c["traceparent"] == "" {
		return trace.SpanContext{}
	}
	var w3c propagation.TraceContext
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), c))
}
