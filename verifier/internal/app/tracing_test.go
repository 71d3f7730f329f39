package app_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is what a test reads of an exported span.
type span struct {
	service, name     string
	kind              tracepb.Span_SpanKind
	trace, id, parent string // hex
	attrs             map[string]string
	links             []string // "trace/span", hex
	statusError       bool
}

func (s span) String() string {
	return fmt.Sprintf("%s %q (%s) trace %s span %s parent %s links %v attrs %v",
		s.service, s.name, s.kind, s.trace, s.id, s.parent, s.links, s.attrs)
}

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces, protobuf)
// in the test process: what the binaries export to.
type otlpReceiver struct {
	URL   string
	mu    sync.Mutex
	spans []span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			http.Error(w, "want POST /v1/traces, protobuf", http.StatusBadRequest)
			return
		}
		var export coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&export)
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *otlpReceiver) add(export *coltrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range export.ResourceSpans {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{service: service, name: s.Name, kind: s.Kind, trace: hex.EncodeToString(s.TraceId),
					id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId), attrs: attrs(s.Attributes),
					statusError: s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR}
				for _, l := range s.Links {
					sp.links = append(sp.links, hex.EncodeToString(l.TraceId)+"/"+hex.EncodeToString(l.SpanId))
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
}

func attrs(kvs []*common.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.Value.(type) {
		case *common.AnyValue_IntValue:
			out[kv.Key] = fmt.Sprint(v.GetIntValue())
		case *common.AnyValue_BoolValue:
			out[kv.Key] = fmt.Sprint(v.GetBoolValue())
		default:
			out[kv.Key] = v.GetStringValue()
		}
	}
	return out
}

// find returns the spans that match.
func (r *otlpReceiver) find(match func(span) bool) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}

// descends reports whether s is root or below it in its trace.
func (r *otlpReceiver) descends(s span, root span) bool {
	r.mu.Lock()
	byID := map[string]span{}
	for _, x := range r.spans {
		byID[x.trace+"/"+x.id] = x
	}
	r.mu.Unlock()
	for range 64 {
		if s.trace != root.trace {
			return false
		}
		if s.id == root.id {
			return true
		}
		p, ok := byID[s.trace+"/"+s.parent]
		if !ok {
			return false
		}
		s = p
	}
	return false
}

// TestTracingFollowsALogoutToTheVerifier runs the issuer (a subprocess)
// and a verifier with the standard OTEL_* variables pointing at an OTLP
// receiver, logs in and out, and reads the spans: the issuer's server
// spans named after their routes, its MongoDB and Redis client spans and
// its Kafka send span inside the logout's trace, and the verifier's
// "revocation applied" span linked to that send span.
func TestTracingFollowsALogoutToTheVerifier(t *testing.T) {
	stack := stackEnv(t)
	otlp := startOTLPReceiver(t)
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "", "OTEL_SERVICE_NAME": "",
		"OTEL_BSP_SCHEDULE_DELAY": "50", // ms: export at once, the test waits for the spans
	} {
		t.Setenv(k, v) // read by the issuer (it inherits them) and the verifier's app.Run
	}
	is := startIssuer(t, stack)
	v := startVerifier(t, is.verifierEnv(stack))
	waitReady(t, v, 30*time.Second)
	email := is.register(t)
	tok := is.login(t, email)
	is.logout(t, tok, "local")
	untilDenied(t, v, tok, 10*time.Second)

	const wait = 30 * time.Second
	serverSpan := func(name string) span {
		var got []span
		eventually(t, wait, "the issuer's server span "+name, func() bool {
			got = otlp.find(func(s span) bool {
				return s.service == "jotguard-issuer" && s.name == name && s.kind == tracepb.Span_SPAN_KIND_SERVER
			})
			return len(got) > 0
		})
		if len(got) != 1 {
			t.Fatalf("%d server spans %s, want 1: %v", len(got), name, got)
		}
		return got[0]
	}
	login, logout := serverSpan("POST /login"), serverSpan("POST /logout")
	if login.attrs["http.route"] != "/login" || logout.attrs["http.route"] != "/logout" ||
		logout.attrs["http.response.status_code"] != "204" {
		t.Errorf("server spans: %v; %v; want http.route and the status", login, logout)
	}
	in := func(root span, match func(span) bool) func() bool {
		return func() bool {
			for _, s := range otlp.find(match) {
				if otlp.descends(s, root) && s.id != root.id {
					return true
				}
			}
			return false
		}
	}
	eventually(t, wait, "a MongoDB span in the login's trace", in(login, func(s span) bool {
		return s.attrs["db.system.name"] == "mongodb" && s.kind == tracepb.Span_SPAN_KIND_CLIENT && s.attrs["db.collection.name"] != ""
	}))
	eventually(t, wait, "a Redis span in the logout's trace", in(logout, func(s span) bool {
		return s.attrs["db.system"] == "redis" && s.kind == tracepb.Span_SPAN_KIND_CLIENT
	}))
	topic := stack["JOTGUARD_REVOCATION_TOPIC"]
	var send span
	eventually(t, wait, "the Kafka send span in the logout's trace", func() bool {
		for _, s := range otlp.find(func(s span) bool { return s.name == "send "+topic }) {
			if otlp.descends(s, logout) {
				send = s
				return true
			}
		}
		return false
	})
	if send.kind != tracepb.Span_SPAN_KIND_PRODUCER || send.attrs["messaging.system"] != "kafka" ||
		send.attrs["messaging.destination.name"] != topic || send.attrs["jotguard.revocation.outboxed"] != "0" {
		t.Errorf("send span: %v", send)
	}
	var applied span
	eventually(t, wait, "the verifier's revocation applied span linked to the send span", func() bool {
		for _, s := range otlp.find(func(s span) bool { return s.service == "jotguard-verifier" && s.name == "revocation applied" }) {
			for _, l := range s.links {
				if l == send.trace+"/"+send.id {
					applied = s
					return true
				}
			}
		}
		return false
	})
	if applied.kind != tracepb.Span_SPAN_KIND_CONSUMER || applied.parent != "" || applied.statusError ||
		applied.attrs["jotguard.revocation.scope"] != "session" || applied.attrs["jotguard.revocation.reason"] != "logout" ||
		applied.attrs["messaging.message.id"] == "" || applied.attrs["messaging.destination.name"] != topic {
		t.Errorf("revocation applied span: %v", applied)
	}
	// Store commands outside any request (readiness probes, relays' polls)
	// make no span.
	for _, s := range otlp.find(func(s span) bool { return s.attrs["db.system.name"] == "mongodb" || s.attrs["db.system"] == "redis" }) {
		if s.parent == "" {
			t.Errorf("a store span outside any other: %v", s)
		}
	}
	// No span carries a secret: no token, no password, no command text.
	for _, s := range otlp.find(func(span) bool { return true }) {
		for k, val := range s.attrs {
			if strings.Contains(val, tok) || strings.Contains(val, password) || k == "db.statement" || k == "db.query.text" {
				t.Errorf("span %q carries %s=%q", s.name, k, val)
			}
		}
	}
}
