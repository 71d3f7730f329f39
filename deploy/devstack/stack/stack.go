// Package stack starts, on loopback, the servers jotguard needs: a
// MongoDB-protocol server (embedded FerretDB on SQLite), Redis (the
// redis-server binary when it is on PATH, else embedded miniredis), a
// Kafka-protocol broker (kfake) and a mail catcher (Mailpit: SMTP, and an
// HTTP API to read what was sent; a child process, see RunChild). The
// clients talk real wire protocols to them, exactly as they do to MongoDB,
// Redis, Kafka and an SMTP relay in production.
package stack

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Service names, as accepted by Options.Services.
const (
	Mongo = "mongo"
	Redis = "redis"
	Kafka = "kafka"
	Mail  = "mail"
	OIDC  = "oidc"
)

// AllServices lists every service in start order.
var AllServices = []string{Mongo, Redis, Kafka, Mail, OIDC}

// Options configures Start. The zero value starts everything on free ports
// with its data in a temporary directory that Close removes.
type Options struct {
	MongoPort, RedisPort, KafkaPort int    // 0: a free port
	SMTPPort, MailPort              int    // Mailpit's SMTP port and the inbox's HTTP port (page and API); 0: a free port
	DataDir                         string // "": a temporary directory, removed by Close
	Services                        []string
	Topic                           string // default "jotguard.revocations"
	Partitions                      int    // default 6
	// KafkaSASL, when its Mechanism is set, makes the broker require SASL
	// with that one user; KafkaTLS, when its CertFile is set, makes it
	// serve TLS only. Both stand in for a managed Kafka's security, so the
	// clients' settings can be tested against a broker that requires them.
	KafkaSASL KafkaSASL
	KafkaTLS  KafkaTLS
	// RedisMode: "" or "auto" (redis-server if on PATH, else miniredis),
	// "server" (redis-server required) or "embedded" (miniredis).
	RedisMode string
	// RedisCluster starts a Redis Cluster of ClusterNodes masters instead
	// of one server (redis-server required); RedisURL is then the comma
	// list of their addresses.
	RedisCluster bool
	// HydraBin is the Ory Hydra binary of the OIDC service; "": hydra
	// beside the running executable (make build writes bin/hydra), else
	// on PATH.
	HydraBin string
	Logger   *slog.Logger
	// StartTimeout bounds how long Start waits for every server to accept
	// connections. Default 60s.
	StartTimeout time.Duration
}

// KafkaSASL is the one SASL user of the broker.
type KafkaSASL struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; "": no SASL
	User      string
	Password  string
}

// KafkaTLS is the broker's TLS: PEM files.
type KafkaTLS struct {
	CertFile, KeyFile string // the server certificate (chain) and its key; "": no TLS
	// ClientCAFile, when set, makes the broker require a client
	// certificate signed by one of its CAs (mutual TLS).
	ClientCAFile string
}

// Stack is a running set of servers.
type Stack struct {
	MongoURI     string // mongodb://127.0.0.1:PORT/
	RedisURL     string // redis://127.0.0.1:PORT/0, or a Cluster's host:port,host:port,…
	KafkaBrokers string // 127.0.0.1:PORT
	Topic        string
	KafkaSASL    KafkaSASL // the broker's SASL user, if any
	KafkaTLS     bool      // the broker serves TLS only
	SMTPURL      string    // smtp://127.0.0.1:PORT: plain SMTP, no auth
	MailpitURL   string    // http://127.0.0.1:PORT: an inbox page at /, Mailpit's HTTP API and views under it
	RedisKind    string    // "redis-server", "redis-cluster" or "miniredis"
	// HydraURL is the OpenID provider's issuer (Ory Hydra): discovery at
	// HydraURL/.well-known/openid-configuration; its sign-in page is the
	// stack's own (see oidc.go). HydraAdminURL is Hydra's admin API
	// (clients: /admin/clients).
	HydraURL, HydraAdminURL string

	log      *slog.Logger
	closers  []func() // run in reverse order by Close
	tempData string
}

// Start starts the requested servers and returns once each accepts
// connections. On error, whatever was started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if len(opts.Services) == 0 {
		opts.Services = AllServices
	}
	for _, s := range opts.Services {
		if !slices.Contains(AllServices, s) {
			return nil, fmt.Errorf("stack: unknown service %q (want %s)", s, strings.Join(AllServices, ", "))
		}
	}
	if opts.Topic == "" {
		opts.Topic = "jotguard.revocations"
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 6
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	s := &Stack{Topic: opts.Topic, log: opts.Logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if opts.DataDir == "" {
		dir, err := os.MkdirTemp("", "jotguard-devstack-")
		if err != nil {
			return nil, fmt.Errorf("stack: data dir: %w", err)
		}
		s.tempData, opts.DataDir = dir, dir
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	for _, name := range AllServices {
		if !slices.Contains(opts.Services, name) {
			continue
		}
		var err error
		switch name {
		case Mongo:
			err = s.startMongo(ctx, opts)
		case Redis:
			err = s.startRedis(ctx, opts)
		case Kafka:
			err = s.startKafka(ctx, opts)
		case Mail:
			err = s.startMail(ctx, opts)
		case OIDC:
			err = s.startOIDC(ctx, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("stack: %s: %w", name, err)
		}
	}
	return s, nil
}

// Env returns the settings for jotguard's binaries, as NAME=value pairs in a
// stable order.
func (s *Stack) Env() []string {
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	add("JOTGUARD_MONGO_URI", s.MongoURI)
	add("JOTGUARD_REDIS_URL", s.RedisURL)
	add("JOTGUARD_KAFKA_BROKERS", s.KafkaBrokers)
	if s.KafkaBrokers != "" {
		add("JOTGUARD_REVOCATION_TOPIC", s.Topic)
		if s.KafkaTLS {
			add("JOTGUARD_KAFKA_TLS", "on") // the CA is the caller's: it signed the certificate
		}
		add("JOTGUARD_KAFKA_SASL_MECHANISM", s.KafkaSASL.Mechanism)
		add("JOTGUARD_KAFKA_SASL_USERNAME", s.KafkaSASL.User)
		add("JOTGUARD_KAFKA_SASL_PASSWORD", s.KafkaSASL.Password)
	}
	add("JOTGUARD_SMTP_URL", s.SMTPURL)
	add("JOTGUARD_MAILPIT_URL", s.MailpitURL)
	add("JOTGUARD_HYDRA_URL", s.HydraURL)
	add("JOTGUARD_HYDRA_ADMIN_URL", s.HydraAdminURL)
	return env
}

// Close stops every server, in reverse start order, and removes a temporary
// data directory. It is safe to call more than once.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
	if s.tempData != "" {
		_ = os.RemoveAll(s.tempData)
		s.tempData = ""
	}
}

func (s *Stack) onClose(f func()) { s.closers = append(s.closers, f) }

func (s *Stack) startMongo(ctx context.Context, opts Options) error {
	dir := filepath.Join(opts.DataDir, "mongo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// FerretDB logs every connection at info and every failed command (a
	// duplicate key, an unsupported index option) at warn; keep its errors.
	log := slog.New(opts.Logger.Handler()).With("service", Mongo)
	quiet := slog.New(&levelFloor{Handler: log.Handler(), min: slog.LevelError})
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: hostPort(opts.MongoPort)},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    quiet,
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = db.Run(runCtx)
	}()
	s.onClose(func() { stop(); <-done })

	uri := make(chan string, 1)
	go func() { uri <- db.MongoDBURI() }() // blocks until the listener is up
	select {
	case s.MongoURI = <-uri:
	case <-done:
		return errors.New("FerretDB stopped while starting (is the port in use?)")
	case <-ctx.Done():
		return fmt.Errorf("FerretDB did not start listening: %w", ctx.Err())
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(s.MongoURI, "mongodb://"), "/")
	opts.Logger.Info("mongodb protocol: embedded FerretDB v1.24 (sqlite)", "addr", addr, "data", dir)
	return nil
}

func (s *Stack) startRedis(ctx context.Context, opts Options) error {
	bin, lookErr := lookRedisServer()
	if opts.RedisCluster {
		if lookErr != nil {
			return fmt.Errorf("a Redis Cluster needs redis-server: %w", lookErr)
		}
		if opts.RedisMode == "embedded" {
			return errors.New("a Redis Cluster needs redis-server, not the embedded miniredis")
		}
		return s.startRedisCluster(ctx, opts, bin)
	}
	switch opts.RedisMode {
	case "", "auto":
		if lookErr == nil {
			return s.startRedisServer(ctx, opts, bin)
		}
		return s.startMiniredis(ctx, opts)
	case "server":
		if lookErr != nil {
			return lookErr
		}
		return s.startRedisServer(ctx, opts, bin)
	case "embedded":
		return s.startMiniredis(ctx, opts)
	}
	return fmt.Errorf("unknown redis mode %q (want auto, server or embedded)", opts.RedisMode)
}

func (s *Stack) startMiniredis(ctx context.Context, opts Options) error {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(hostPort(opts.RedisPort)); err != nil {
		return err
	}
	s.onClose(m.Close)
	s.RedisKind = "miniredis"
	s.RedisURL = "redis://" + m.Addr() + "/0"
	if err := waitTCP(ctx, m.Addr(), redisPing); err != nil {
		return err
	}
	opts.Logger.Info("redis: embedded miniredis (redis-server is not on PATH)", "addr", m.Addr())
	return nil
}

func (s *Stack) startRedisServer(ctx context.Context, opts Options, bin string) error {
	port := opts.RedisPort
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		port = p
	}
	dir := filepath.Join(opts.DataDir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	addr := hostPort(port)
	p, err := startChild(exec.Command(bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", // no persistence: a dev stack
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning",
	))
	if err != nil {
		return err
	}
	s.onClose(p.stop)
	s.RedisKind = "redis-server"
	s.RedisURL = "redis://" + addr + "/0"
	if err := waitTCP(ctx, addr, redisPing, p.exited); err != nil {
		return err
	}
	opts.Logger.Info("redis: redis-server from PATH", "addr", addr, "bin", bin, "pid", p.cmd.Process.Pid)
	return nil
}

func (s *Stack) startKafka(ctx context.Context, opts Options) error {
	dir := filepath.Join(opts.DataDir, "kafka")
	security, err := kafkaSecurity(opts.KafkaSASL, opts.KafkaTLS)
	if err != nil {
		return err
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.Ports(opts.KafkaPort),
		kfake.SeedTopics(int32(opts.Partitions), opts.Topic),
		kfake.DataDir(dir), // a second run of the same --data keeps the events
	}, security...)...)
	if err != nil {
		return err
	}
	s.KafkaSASL, s.KafkaTLS = opts.KafkaSASL, opts.KafkaTLS.CertFile != ""
	s.onClose(c.Close)
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		return errors.New("kfake has no listener")
	}
	s.KafkaBrokers = strings.Join(addrs, ",")
	if err := waitTCP(ctx, addrs[0], nil); err != nil {
		return err
	}
	opts.Logger.Info("kafka protocol: embedded kfake", "addr", s.KafkaBrokers,
		"topic", opts.Topic, "partitions", opts.Partitions, "data", dir,
		"tls", tlsMode(opts.KafkaTLS), "sasl", cmp.Or(opts.KafkaSASL.Mechanism, "none"))
	return nil
}

// kafkaSecurity turns the broker's SASL and TLS settings into kfake options.
func kafkaSecurity(sasl KafkaSASL, t KafkaTLS) ([]kfake.Opt, error) {
	var opts []kfake.Opt
	switch sasl.Mechanism {
	case "":
		if sasl.User != "" || sasl.Password != "" {
			return nil, errors.New("a SASL user or password without a mechanism")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if sasl.User == "" || sasl.Password == "" {
			return nil, fmt.Errorf("SASL %s needs a user and a password", sasl.Mechanism)
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(sasl.Mechanism, sasl.User, sasl.Password))
	default:
		return nil, fmt.Errorf("unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", sasl.Mechanism)
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "" && t.ClientCAFile == "":
		return opts, nil
	case t.CertFile == "" || t.KeyFile == "":
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", t.ClientCAFile)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return append(opts, kfake.TLS(cfg)), nil
}

func tlsMode(t KafkaTLS) string {
	switch {
	case t.ClientCAFile != "":
		return "mutual"
	case t.CertFile != "":
		return "on"
	}
	return "off"
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP dials addr until it accepts a connection and probe (if any)
// succeeds on it, ctx ends, or a channel in dead is closed.
func waitTCP(ctx context.Context, addr string, probe func(net.Conn) error, dead ...<-chan struct{}) error {
	var last error
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			if probe != nil {
				_ = conn.SetDeadline(time.Now().Add(time.Second))
				err = probe(conn)
			}
			conn.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		for _, d := range dead {
			select {
			case <-d:
				return fmt.Errorf("%s: server exited while starting: %w", addr, last)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not accept connections: %w", addr, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func redisPing(c net.Conn) error {
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "+PONG") {
		return fmt.Errorf("redis answered %q to PING", buf[:n])
	}
	return nil
}

// levelFloor drops records below min.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h *levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h *levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return &levelFloor{Handler: h.Handler.WithAttrs(a), min: h.min}
}

func (h *levelFloor) WithGroup(n string) slog.Handler {
	return &levelFloor{Handler: h.Handler.WithGroup(n), min: h.min}
}
