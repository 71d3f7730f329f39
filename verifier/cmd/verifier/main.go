// Command verifier is jotguard's verifier sidecar: auth-check
// endpoints for nginx, Traefik and Envoy, or a checking reverse proxy with
// JOTGUARD_UPSTREAM, served until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/jotguard/jotguard/sdk/buildinfo"
	"github.com/jotguard/jotguard/verifier/internal/app"
	"github.com/jotguard/jotguard/verifier/internal/config"
	"github.com/jotguard/jotguard/verifier/internal/logging"
)

// version is set by release builds: -ldflags "-X main.version=v1.2.3".
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if slices.Contains(os.Args[1:], "--version") || slices.Contains(os.Args[1:], "-version") {
		fmt.Println("verifier", buildinfo.Read(version))
		return
	}
	cfg, err := config.Load(os.Args[1:], os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		config.Usage(os.Stdout)
		os.Exit(0)
	case err != nil: // one line, naming the variable
		fmt.Fprintln(os.Stderr, "verifier:", err)
		os.Exit(2)
	}
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	cfg.Build = buildinfo.Read(version)
	if err := app.Run(ctx, cfg, log, nil); err != nil {
		log.Error("verifier stopped", "err", err)
		os.Exit(1)
	}
}
