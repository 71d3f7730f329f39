package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
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
