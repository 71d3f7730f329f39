package kafkaevents

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing. Every delivery of events to Kafka is a producer span,
// "send <topic>", from OpenTelemetry's global TracerProvider as it is when
// the Publisher is made (a no-op one unless the binary set tracing up). Each event carries the context of the
// span that first sent it, its creation context, as W3C trace context
// (traceparent, tracestate): in its record's headers, and in its outbox
// entry while it waits there, so that an event the relay sends later still
// names the request that caused it. Consumers (sdk/kafkafeed) link their
// "revocation applied" spans to it.

// newTracer is the Publisher's tracer.
func newTracer() trace.Tracer {
	return otel.GetTracerProvider().Tracer("github.com/jotguard/jotguard/issuer/internal/kafkaevents")
}

// w3c is the one format of the trace context an event carries.
var w3c propagation.TraceContext

// startSend starts the producer span of one delivery of n events, linked
// to the events' creation contexts when it is the relay's.
func (p *Publisher) startSend(ctx context.Context, n int, links ...trace.Link) (context.Context, trace.Span) {
	return p.tracer.Start(ctx, "send "+p.cfg.Topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...),
		trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"), semconv.MessagingDestinationName(p.cfg.Topic),
			semconv.MessagingBatchMessageCount(n)))
}

// endSend ends a send span: an error marks it failed (the events were then
// neither acknowledged nor queued); outboxed counts the events queued in
// the outbox instead of acknowledged by Kafka.
func endSend(span trace.Span, outboxed int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("jotguard.revocation.outboxed", outboxed))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorType(err))
		}
	}
	span.End()
}

// traceCarrier is sc as W3C trace context fields, for an outbox entry;
// nil when sc is not valid (tracing off).
func traceCarrier(sc trace.SpanContext) map[string]string {
	if !sc.IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	w3c.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c
}

// traceOf is the span context stored in an outbox entry; not valid when
// none is.
func traceOf(carrier map[string]string) trace.SpanContext {
	if len(carrier) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.MapCarrier(carrier)))
}

// withTrace appends sc to a record's headers, as W3C trace context; h as
// it is when sc is not valid.
func withTrace(h []kafka.Header, sc trace.SpanContext) []kafka.Header {
	if sc.IsValid() {
		c := headerCarrier{&h}
		w3c.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	}
	return h
}

// headerCarrier is a propagation.TextMapCarrier over a Kafka record's
// headers.
type headerCarrier struct{ h *[]kafka.Header }

var _ propagation.TextMapCarrier = headerCarrier{}

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.h {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, h := range *c.h {
		if h.Key == key {
			(*c.h)[i].Value = []byte(value)
			return
		}
	}
	*c.h = append(*c.h, kafka.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(*c.h))
	for i, h := range *c.h {
		keys[i] = h.Key
	}
	return keys
}
