package tracing_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/jotguard/jotguard/issuer/internal/tracing"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

func TestWanted(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, true},
	} {
		if got := tracing.Wanted(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("Wanted(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"} {
		t.Setenv(k, "")
	}
}

// Off by default: nothing is installed, and Stop does nothing.
func TestOffByDefault(t *testing.T) {
	clearEnv(t)
	tr, err := tracing.Start(t.Context(), "jotguard-issuer", "v1")
	if err != nil || tr.On() {
		t.Fatalf("Start() = on %v, %v; want off", tr.On(), err)
	}
	if _, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider); sdk {
		t.Fatal("a TracerProvider was installed with tracing off")
	}
	if err := tr.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A bad value stops the start, naming the variable.
func TestBadSettingIsNamed(t *testing.T) {
	for k, v := range map[string]string{"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"} {
		t.Run(k, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(k, v)
			tr, err := tracing.Start(t.Context(), "jotguard-issuer", "v1")
			if err == nil || !strings.HasPrefix(err.Error(), k+": ") {
				t.Fatalf("Start with %s=%s: %v, want an error naming %s", k, v, err, k)
			}
			if tr.On() {
				t.Fatal("on after a failed start")
			}
		})
	}
}

// receiver is an OTLP/gRPC trace receiver.
type receiver struct {
	coltrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	services []string
	spans    []string
}

func (r *receiver) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				r.services = append(r.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, s.Name)
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// Spans go where the variables say, over gRPC too, named for the service
// unless OTEL_SERVICE_NAME names it; Stop sends what is buffered. A store's
// span is made only inside another.
func TestExportsOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &receiver{}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, rec)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_SERVICE_NAME", "issuer-eu-1")
	tr, err := tracing.Start(t.Context(), "jotguard-issuer", "v1")
	if err != nil || !tr.On() {
		t.Fatalf("Start() = on %v, %v; want on", tr.On(), err)
	}
	ctx, span := otel.Tracer("test").Start(t.Context(), "hello")
	store := tr.ChildSpans().Tracer("store")
	_, child := store.Start(ctx, "child")
	child.End()
	_, orphan := store.Start(t.Context(), "orphan") // a command outside any span
	orphan.End()
	span.End()
	if err := tr.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if strings.Join(rec.spans, " ") != "child hello" || rec.services[0] != "issuer-eu-1" {
		t.Fatalf("received spans %v of %v, want child and hello (not orphan) of issuer-eu-1", rec.spans, rec.services)
	}
	if _, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider); sdk {
		t.Fatal("the global TracerProvider is still the stopped one")
	}
}
