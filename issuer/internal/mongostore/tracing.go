package mongostore

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TraceCommands returns a command monitor that makes every MongoDB command
// a client span of tp, a child of the span in the command's context (tp
// decides whether a command outside any span makes one). A span
// is named after the command and its collection ("find users") and carries
// the database, the collection and the server, never the command's
// documents: they hold password hashes, tokens' hashes and addresses.
// Install it (options.Client().SetMonitor) only when tracing is on.
func TraceCommands(tp trace.TracerProvider) *event.CommandMonitor {
	t := &commandTracer{tracer: tp.Tracer("github.com/jotguard/jotguard/issuer/internal/mongostore")}
	return &event.CommandMonitor{Started: t.started, Succeeded: t.succeeded, Failed: t.failed}
}

type commandTracer struct {
	tracer trace.Tracer
	spans  sync.Map // request id → trace.Span, between started and its end
}

func (t *commandTracer) started(ctx context.Context, e *event.CommandStartedEvent) {
	name, attrs := e.CommandName, []attribute.KeyValue{semconv.DBSystemNameMongoDB,
		semconv.DBOperationName(e.CommandName), semconv.DBNamespace(e.DatabaseName)}
	// A collection command names its collection in its first element.
	if first, err := e.Command.IndexErr(0); err == nil && first.Value().Type == bson.TypeString {
		coll := first.Value().StringValue()
		name += " " + coll
		attrs = append(attrs, semconv.DBCollectionName(coll))
	}
	// The connection id is "host:port[-n]".
	addr, _, _ := strings.Cut(e.ConnectionID, "[")
	if host, port, err := net.SplitHostPort(addr); err == nil {
		attrs = append(attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	_, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	t.spans.Store(e.RequestID, span)
}

func (t *commandTracer) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	if s, ok := t.spans.LoadAndDelete(e.RequestID); ok {
		s.(trace.Span).End()
	}
}

func (t *commandTracer) failed(_ context.Context, e *event.CommandFailedEvent) {
	if s, ok := t.spans.LoadAndDelete(e.RequestID); ok {
		span := s.(trace.Span)
		// Not the message: a duplicate key error quotes the key (an email).
		span.SetStatus(codes.Error, e.CommandName+" failed")
		span.SetAttributes(semconv.ErrorType(e.Failure))
		span.End()
	}
}
