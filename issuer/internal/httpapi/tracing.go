package httpapi

import (
	"context"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// nameSpan names the request's server span (when tracing is on and one
// records) after its route, "POST /logout", and sets http.route: the span
// is started before Echo routes the request, and the raw path may hold a
// session id. A request no route matched keeps the method as its name.
// Without tracing it costs one context look-up.
func nameSpan(ctx context.Context, method, route string) {
	if span := trace.SpanFromContext(ctx); route != "" && span.IsRecording() {
		span.SetName(method + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route))
	}
}
