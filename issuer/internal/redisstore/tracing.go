package redisstore

import (
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// TraceCommands makes every command and pipeline of rdb (the sessions'
// and the rate limits') a client span of tp, a child of the span in the
// command's context, named after the command ("evalsha", "pipeline get
// set"). Spans carry the server, never the command's arguments: they hold
// refresh tokens' hashes and session data. Call it only when tracing is on:
// it adds a hook to every command.
func TraceCommands(rdb redis.UniversalClient, tp trace.TracerProvider) error {
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
		return fmt.Errorf("redisstore: tracing: %w", err)
	}
	return nil
}
