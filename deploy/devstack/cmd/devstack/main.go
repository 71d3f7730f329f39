// Command devstack starts MongoDB-protocol, Redis and Kafka-protocol servers,
// a mail catcher (Mailpit: SMTP, and an HTTP API to read what was sent) and
// an OpenID provider (Ory Hydra) on loopback for development and tests,
// prints their settings as `export JOTGUARD_…=…` lines on stdout once all
// accept connections, and stops them on SIGINT or SIGTERM. Logs go to
// stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jotguard/jotguard/deploy/devstack/stack"

	"slices"

	"runtime"

	"runtime/debug"
)

func main() {
	stack.RunChild() // in the child process that runs Mailpit, never returns
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if slices.Contains(args, "--version") || slices.Contains(args, "-version") {
		fmt.Fprintln(stdout, "devstack", version())
		return nil
	}
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts stack.Options
	var services string
	fs.IntVar(&opts.MongoPort, "mongo-port", 0, "MongoDB-protocol (FerretDB) port; 0 picks a free one")
	fs.IntVar(&opts.RedisPort, "redis-port", 0, "Redis port; 0 picks a free one")
	fs.IntVar(&opts.KafkaPort, "kafka-port", 0, "Kafka-protocol (kfake) port; 0 picks a free one")
	fs.IntVar(&opts.SMTPPort, "smtp-port", 0, "Mailpit's SMTP port (plain SMTP, no auth); 0 picks a free one")
	fs.IntVar(&opts.MailPort, "mail-port", 0, "HTTP port of the inbox page and Mailpit's API; 0 picks a free one")
	fs.StringVar(&opts.DataDir, "data", "", "data directory, kept between runs; empty: a temporary one, removed at exit")
	fs.StringVar(&services, "only", strings.Join(stack.AllServices, ","), "comma list of the services to start")
	fs.StringVar(&opts.RedisMode, "redis", "auto", "auto (redis-server if on PATH, else miniredis), server or embedded")
	fs.BoolVar(&opts.RedisCluster, "redis-cluster", false, "start a Redis Cluster of 3 masters (redis-server required); JOTGUARD_REDIS_URL is then the comma list of their addresses")
	fs.StringVar(&opts.Topic, "topic", "jotguard.revocations", "revocation topic to create")
	fs.IntVar(&opts.Partitions, "partitions", 6, "partitions of the revocation topic")
	fs.StringVar(&opts.KafkaSASL.Mechanism, "kafka-sasl-mechanism", "", "make Kafka require SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with --kafka-sasl-user and --kafka-sasl-password")
	fs.StringVar(&opts.KafkaSASL.User, "kafka-sasl-user", "", "the one SASL user of Kafka")
	fs.StringVar(&opts.KafkaSASL.Password, "kafka-sasl-password", "", "its password (exported as JOTGUARD_KAFKA_SASL_PASSWORD: a development setting)")
	fs.StringVar(&opts.KafkaTLS.CertFile, "kafka-tls-cert", "", "make Kafka serve TLS only, with this PEM certificate (chain); with --kafka-tls-key")
	fs.StringVar(&opts.KafkaTLS.KeyFile, "kafka-tls-key", "", "PEM key of --kafka-tls-cert")
	fs.StringVar(&opts.KafkaTLS.ClientCAFile, "kafka-tls-client-ca", "", "PEM CA certificates: Kafka requires a client certificate signed by one (mutual TLS)")
	fs.StringVar(&opts.HydraBin, "hydra-bin", "", "Ory Hydra binary of the oidc service; empty: hydra beside devstack, else on PATH")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: devstack [flags]\n\nStarts MongoDB (FerretDB), Redis, Kafka (kfake), a mail catcher (Mailpit) and\nan OpenID provider (Ory Hydra, with a sign-in page that accepts anyone) on\n127.0.0.1 and prints `export JOTGUARD_...=...` lines once all accept\nconnections. Ctrl-C stops them. Mail sent to JOTGUARD_SMTP_URL (plain SMTP, no\nauth) is read at JOTGUARD_MAILPIT_URL: an inbox page at /, and Mailpit's API\n(/api/v1/messages, /api/v1/search?query=, /view/{ID}.html). The --kafka-sasl-*\nand --kafka-tls-* flags secure Kafka like a managed one, for testing clients.\nThe provider's issuer is JOTGUARD_HYDRA_URL; its clients are made through\nHydra's admin API at JOTGUARD_HYDRA_ADMIN_URL (/admin/clients).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range strings.Split(services, ",") {
		if s = strings.TrimSpace(s); s != "" {
			opts.Services = append(opts.Services, s)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "devstack")
	opts.Logger = log

	s, err := stack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Close()

	// One write, so that a reader polling the file sees all lines or none.
	var b strings.Builder
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, v)
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	log.Info("ready; Ctrl-C stops the stack")
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// version is the module version and the VCS revision the toolchain
// recorded, for --version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown " + runtime.Version()
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " (commit " + s.Value[:min(12, len(s.Value))] + ")"
		}
	}
	return v + " " + runtime.Version()
}
