// Command issuer is jotguard's issuer: it serves the auth API until
// SIGINT or SIGTERM; `issuer keys rotate|list` manage signing keys,
// `issuer users …` and `issuer clients …` administrators and service
// accounts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/jotguard/jotguard/issuer/internal/app"
	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/issuer/internal/logging"
	"github.com/jotguard/jotguard/sdk/buildinfo"
)

// version is set by release builds: -ldflags "-X main.version=v1.2.3".
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	args := os.Args[1:]
	if slices.Contains(args, "--version") || slices.Contains(args, "-version") {
		fmt.Println("issuer", buildinfo.Read(version))
		return
	}
	if len(args) > 0 && (args[0] == "users" || args[0] == "clients") {
		adminCommand(ctx, args)
		return
	}
	var keysCmd string
	if len(args) > 0 && args[0] == "keys" {
		if len(args) < 2 || (args[1] != "rotate" && args[1] != "list") {
			fmt.Fprintln(os.Stderr, "issuer: usage: issuer keys rotate|list [flags]")
			os.Exit(2)
		}
		keysCmd, args = args[1], args[2:]
	}
	load := config.Load
	if keysCmd != "" {
		load = config.LoadForKeys
	}
	cfg, log := loadConfig(load, args)
	// A Go memory limit at 90% of the container's (unless GOMEMLIMIT is
	// set): the garbage collector then works to stay under it, and password
	// hashing sizes its concurrency by it.
	_, _ = memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithLogger(log))
	if keysCmd != "" {
		if err := app.Keys(ctx, cfg, log, keysCmd, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "issuer:", err)
			os.Exit(1)
		}
		return
	}
	cfg.Build = buildinfo.Read(version)
	if err := app.Run(ctx, cfg, log, nil); err != nil {
		log.Error("issuer stopped", "err", err)
		os.Exit(1)
	}
}

// adminCommand runs `issuer users …` or `issuer clients …` and exits on
// failure.
func adminCommand(ctx context.Context, args []string) {
	cmd, rest, err := app.ParseCommand(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "issuer:", err)
		os.Exit(2)
	}
	cfg, log := loadConfig(config.LoadForCommand, rest)
	if err := app.Command(ctx, cfg, log, cmd, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "issuer:", err)
		os.Exit(1)
	}
}

// loadConfig reads the settings with load and returns them with the
// logger they configure; --help prints the usage and exits 0, a bad
// setting prints one line and exits 2.
func loadConfig(load func([]string, func(string) string) (config.Config, error), args []string) (config.Config, *slog.Logger) {
	cfg, err := load(args, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		config.Usage(os.Stdout)
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "issuer:", err)
		os.Exit(2)
	}
	return cfg, logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
}
