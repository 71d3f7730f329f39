// Command demo is the upstream service of `make run`: GET /hello answers
// who the caller is, after the sdk middleware verified the token (behind
// the verifier sidecar, which verified it too); GET /healthz and /readyz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jotguard/jotguard/deploy/demo/internal/demo"

	"slices"

	"github.com/jotguard/jotguard/sdk/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if slices.Contains(os.Args[1:], "--version") || slices.Contains(os.Args[1:], "-version") {
		fmt.Println("demo", buildinfo.Read(""))
		return
	}
	cfg, err := demo.Load(os.Args[1:], os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		demo.Usage(os.Stdout)
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(2)
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var log *slog.Logger
	if cfg.LogFormat == "text" {
		log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	} else {
		log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	if err := demo.Run(ctx, cfg, log, nil); err != nil {
		log.Error("demo stopped", "err", err)
		os.Exit(1)
	}
}
