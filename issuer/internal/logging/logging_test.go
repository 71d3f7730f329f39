package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

func TestRequestIDInEveryLine(t *testing.T) {
	var b bytes.Buffer
	log := New(&b, slog.LevelInfo, "json").With("component", "test")
	ctx := WithRequestID(context.Background(), "req-1")
	log.InfoContext(ctx, "hello")
	log.DebugContext(ctx, "hidden")
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", b.String(), err)
	}
	if m["request_id"] != "req-1" || m["component"] != "test" || m["msg"] != "hello" {
		t.Fatalf("line %v", m)
	}
	if RequestID(context.Background()) != "" {
		t.Fatal("request id from nowhere")
	}
}

func TestDurationsAreText(t *testing.T) {
	var b bytes.Buffer
	New(&b, slog.LevelInfo, "json").Info("waited", "retry_in", 1500*time.Millisecond)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["retry_in"] != "1.5s" {
		t.Fatalf("line %s: retry_in %v, want \"1.5s\"", b.String(), m["retry_in"])
	}
}

func TestTraceIDOfATracedRequest(t *testing.T) {
	var b bytes.Buffer
	log := New(&b, slog.LevelInfo, "json")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4}})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	log.InfoContext(context.Background(), "untraced")
	lines := bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n"))
	var traced, untraced map[string]any
	if len(lines) != 2 || json.Unmarshal(lines[0], &traced) != nil || json.Unmarshal(lines[1], &untraced) != nil {
		t.Fatalf("log %q", b.String())
	}
	if traced["trace_id"] != sc.TraceID().String() || untraced["trace_id"] != nil {
		t.Fatalf("trace_id %v and %v, want %s and none", traced["trace_id"], untraced["trace_id"], sc.TraceID())
	}
}
