// Package tracing exports OpenTelemetry traces when the standard OTEL_*
// environment variables ask for it, and costs nothing when they do not.
//
// Tracing is on when OTEL_TRACES_EXPORTER names an exporter other than
// "none", or when it is unset and an OTLP endpoint is
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
// OTEL_SDK_DISABLED=true turns it off. The exporter, its protocol
// (http/protobuf or grpc), endpoint, headers and timeouts, the sampler, the
// batching and the resource come from the variables the OpenTelemetry SDK
// and its autoexport package read. When tracing is off, no TracerProvider
// is installed: the instrumentation finds OpenTelemetry's no-op global one
// and the binaries add no tracing middleware or hooks at all.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// Wanted reports whether the environment (read through getenv) asks for
// traces to be exported.
func Wanted(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" {
		return e != "none"
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// check names the variable whose value no exporter takes.
func check(getenv func(string) string) error {
	switch e := getenv("OTEL_TRACES_EXPORTER"); e {
	case "", "otlp", "console", "none":
	default:
		return fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not otlp, console or none", e)
	}
	k := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" // else the one for every signal
	if getenv(k) == "" {
		k = "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch p := getenv(k); p {
	case "", "http/protobuf", "grpc":
		return nil
	default:
		return fmt.Errorf("%s: %q is not http/protobuf or grpc", k, p)
	}
}

// Tracing is the process's tracing, on or off.
type Tracing struct {
	tp *sdktrace.TracerProvider // nil: off
}

// On reports whether spans are exported. The binaries add their HTTP,
// MongoDB and Redis instrumentation only then.
func (t *Tracing) On() bool { return t != nil && t.tp != nil }

// Start sets tracing up from the process's environment. When Wanted, it
// installs a TracerProvider exporting through the exporter the variables
// name as OpenTelemetry's global one, with the W3C trace context and
// baggage propagators, for a resource named service (unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it) at version. An
// error names the variable that is wrong.
func Start(ctx context.Context, service, version string) (*Tracing, error) {
	if !Wanted(os.Getenv) {
		return &Tracing{}, nil
	}
	if err := check(os.Getenv); err != nil {
		return nil, err
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win over the defaults above
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Tracing{tp: tp}, nil
}

// Provider is the TracerProvider spans go to: the exporting one when on,
// a no-op one when off.
func (t *Tracing) Provider() trace.TracerProvider {
	if !t.On() {
		return noop.NewTracerProvider()
	}
	return t.tp
}

// ChildSpans is Provider for the spans of a store's commands: they are
// made only inside another span (a request's, a relay's send). A command
// outside any, such as a readiness probe's ping or a relay's poll of its
// outbox, makes none: every second or so per replica, they would bury the
// traces that matter.
func (t *Tracing) ChildSpans() trace.TracerProvider { return childOnly{tp: t.Provider()} }

type childOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (c childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: c.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (c childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a no-op span
	}
	return c.t.Start(ctx, name, opts...)
}

// Stop exports the spans still buffered (within ctx) and stops exporting;
// the global TracerProvider becomes a no-op one. Stopping tracing that is
// off does nothing.
func (t *Tracing) Stop(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	otel.SetTracerProvider(noop.NewTracerProvider())
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flushing spans: %w", err)
	}
	return nil
}
