// Package kafkasec connects jotguard's Kafka clients to brokers that
// require TLS (a private CA, or client certificates for mutual TLS) and
// SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), as managed Kafka services
// do. A Config is read from the JOTGUARD_KAFKA_TLS* and
// JOTGUARD_KAFKA_SASL_* settings (Settings), and builds the one kafka-go
// Dialer, and from it the Transport, that every client of the revocation
// topic uses: the issuer's writer and broker probes, and each kafkafeed
// Feed's metadata, offset queries and fetches. A client built any other
// way would reach a secured broker without its credentials, and fail.
//
// The Dialer secures a connection itself, before kafka-go uses it: TLS
// handshake, one ApiVersions exchange, then SASL. So each failure is
// named for the step that failed, and Refused tells a broker that refuses
// this client (a setting to fix) from one that is down (an outage to
// wait out).
package kafkasec

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/protocol/saslauthenticate"
	"github.com/segmentio/kafka-go/protocol/saslhandshake"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Config is how a client secures its connections to the brokers. The zero
// value is plaintext without SASL. Each field is read from the variable
// its comment names (see Settings).
type Config struct {
	TLS bool // JOTGUARD_KAFKA_TLS
	// CAFile holds the PEM certificates of the CAs the brokers'
	// certificates must chain to; "": the system's roots (public CAs, as
	// MSK and Confluent Cloud use). JOTGUARD_KAFKA_TLS_CA_FILE.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate (chain) and its
	// key, for brokers that require mutual TLS; both or neither.
	// JOTGUARD_KAFKA_TLS_CERT_FILE, JOTGUARD_KAFKA_TLS_KEY_FILE.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must hold; "":
	// each broker's host as dialed. JOTGUARD_KAFKA_TLS_SERVER_NAME.
	ServerName string

	// Mechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	// JOTGUARD_KAFKA_SASL_MECHANISM.
	Mechanism string
	Username  string // JOTGUARD_KAFKA_SASL_USERNAME
	Password  Secret // JOTGUARD_KAFKA_SASL_PASSWORD
	// PasswordFile, instead of Password, holds it (a mounted Kubernetes
	// secret): read when the Dialer is built, without a trailing newline.
	// JOTGUARD_KAFKA_SASL_PASSWORD_FILE.
	PasswordFile string
}

// Secret is a password: logs, %v and %#v show "[redacted]" (or "unset").
type Secret string

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return "unset"
	}
	return "[redacted]"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue implements slog.LogValuer: the settings, never the password.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("tls", onOff(c.TLS))}
	if c.TLS {
		attrs = append(attrs, slog.String("ca", cmp.Or(c.CAFile, "system roots")))
		if c.CertFile != "" {
			attrs = append(attrs, slog.String("client_cert", c.CertFile))
		}
		if c.ServerName != "" {
			attrs = append(attrs, slog.String("server_name", c.ServerName))
		}
	}
	attrs = append(attrs, slog.String("sasl", cmp.Or(c.Mechanism, "none")))
	if c.Mechanism != "" {
		attrs = append(attrs, slog.String("username", c.Username))
		if c.PasswordFile != "" {
			attrs = append(attrs, slog.String("password_file", c.PasswordFile))
		} else {
			attrs = append(attrs, slog.Any("password", c.Password))
		}
	}
	return slog.GroupValue(attrs...)
}

// Warning is a line to log at start when c is secured only in part ("" if
// not): SASL PLAIN without TLS sends the password in the clear.
func (c Config) Warning() string {
	if c.Mechanism == Plain && !c.TLS {
		return "SASL PLAIN without TLS (JOTGUARD_KAFKA_TLS) sends the Kafka password in the clear"
	}
	return ""
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Setting is one variable of a Config: its name, the flag that the
// binaries give it, its default and what it does.
type Setting struct {
	Name, Flag, Default, Usage string
	set                        func(*Config, string) error
}

// Set applies value, which is not empty, to c. Its error does not name
// the variable: the caller prefixes it.
func (s Setting) Set(c *Config, value string) error { return s.set(c, value) }

// Settings returns the variables of a Config, in the order of the docs.
// A binary reads them like its other settings and then calls Check.
func Settings() []Setting { return append([]Setting(nil), settings...) }

var settings = []Setting{
	{Name: "JOTGUARD_KAFKA_TLS", Flag: "kafka-tls", Default: "off",
		Usage: "on: connect to Kafka over TLS, checking the brokers' certificates against JOTGUARD_KAFKA_TLS_CA_FILE or the system's roots",
		set: func(c *Config, s string) error {
			switch strings.ToLower(s) {
			case "on", "true", "1":
				c.TLS = true
			case "off", "false", "0":
				c.TLS = false
			default:
				return fmt.Errorf("want on or off, got %q", s)
			}
			return nil
		}},
	{Name: "JOTGUARD_KAFKA_TLS_CA_FILE", Flag: "kafka-tls-ca-file",
		Usage: "PEM file of the CAs that sign the Kafka brokers' certificates (a private CA); unset: the system's roots",
		set:   func(c *Config, s string) error { c.CAFile = s; return nil }},
	{Name: "JOTGUARD_KAFKA_TLS_CERT_FILE", Flag: "kafka-tls-cert-file",
		Usage: "PEM client certificate (chain) for brokers that require mutual TLS; with JOTGUARD_KAFKA_TLS_KEY_FILE",
		set:   func(c *Config, s string) error { c.CertFile = s; return nil }},
	{Name: "JOTGUARD_KAFKA_TLS_KEY_FILE", Flag: "kafka-tls-key-file",
		Usage: "PEM key of JOTGUARD_KAFKA_TLS_CERT_FILE",
		set:   func(c *Config, s string) error { c.KeyFile = s; return nil }},
	{Name: "JOTGUARD_KAFKA_TLS_SERVER_NAME", Flag: "kafka-tls-server-name",
		Usage: "the name the brokers' certificates must hold, when it is not the host in JOTGUARD_KAFKA_BROKERS and in the brokers' advertised addresses",
		set:   func(c *Config, s string) error { c.ServerName = s; return nil }},
	{Name: "JOTGUARD_KAFKA_SASL_MECHANISM", Flag: "kafka-sasl-mechanism", Default: "none",
		Usage: "SASL authentication to Kafka: none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
		set: func(c *Config, s string) error {
			switch m := strings.ToUpper(s); m {
			case "NONE":
				c.Mechanism = ""
			case Plain, ScramSHA256, ScramSHA512:
				c.Mechanism = m
			default:
				return fmt.Errorf("want none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s)
			}
			return nil
		}},
	{Name: "JOTGUARD_KAFKA_SASL_USERNAME", Flag: "kafka-sasl-username",
		Usage: "SASL user name",
		set:   func(c *Config, s string) error { c.Username = s; return nil }},
	{Name: "JOTGUARD_KAFKA_SASL_PASSWORD", Flag: "kafka-sasl-password",
		Usage: "SASL password (never logged; a flag shows in the process list: prefer this variable or JOTGUARD_KAFKA_SASL_PASSWORD_FILE)",
		set:   func(c *Config, s string) error { c.Password = Secret(s); return nil }},
	{Name: "JOTGUARD_KAFKA_SASL_PASSWORD_FILE", Flag: "kafka-sasl-password-file",
		Usage: "file holding the SASL password, such as a mounted Kubernetes secret (read at start; a trailing newline is dropped)",
		set:   func(c *Config, s string) error { c.PasswordFile = s; return nil }},
}

// Check validates c as a whole, reading its files: the error of the first
// problem, naming its variable; nil when Dialer will succeed.
func (c Config) Check() error {
	_, _, err := c.build()
	return err
}

// build returns the TLS configuration (nil without TLS) and the SASL
// mechanism (nil without SASL).
func (c Config) build() (*tls.Config, sasl.Mechanism, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.mechanism()
	if err != nil {
		return nil, nil, err
	}
	return tc, mech, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, unused("JOTGUARD_KAFKA_TLS is off",
			"JOTGUARD_KAFKA_TLS_CA_FILE", c.CAFile, "JOTGUARD_KAFKA_TLS_CERT_FILE", c.CertFile,
			"JOTGUARD_KAFKA_TLS_KEY_FILE", c.KeyFile, "JOTGUARD_KAFKA_TLS_SERVER_NAME", c.ServerName)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("JOTGUARD_KAFKA_TLS_CA_FILE: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("JOTGUARD_KAFKA_TLS_CA_FILE: %s holds no PEM certificate", c.CAFile)
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return nil, errors.New("JOTGUARD_KAFKA_TLS_KEY_FILE is required with JOTGUARD_KAFKA_TLS_CERT_FILE")
	case c.KeyFile != "" && c.CertFile == "":
		return nil, errors.New("JOTGUARD_KAFKA_TLS_CERT_FILE is required with JOTGUARD_KAFKA_TLS_KEY_FILE")
	case c.CertFile != "":
		for name, f := range map[string]string{"JOTGUARD_KAFKA_TLS_CERT_FILE": c.CertFile, "JOTGUARD_KAFKA_TLS_KEY_FILE": c.KeyFile} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("JOTGUARD_KAFKA_TLS_CERT_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c Config) mechanism() (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, unused("JOTGUARD_KAFKA_SASL_MECHANISM is none",
			"JOTGUARD_KAFKA_SASL_USERNAME", c.Username, "JOTGUARD_KAFKA_SASL_PASSWORD", string(c.Password),
			"JOTGUARD_KAFKA_SASL_PASSWORD_FILE", c.PasswordFile)
	}
	password := string(c.Password)
	switch {
	case c.Username == "":
		return nil, fmt.Errorf("JOTGUARD_KAFKA_SASL_USERNAME is required with SASL %s", c.Mechanism)
	case password != "" && c.PasswordFile != "":
		return nil, errors.New("JOTGUARD_KAFKA_SASL_PASSWORD_FILE: set together with JOTGUARD_KAFKA_SASL_PASSWORD; use one")
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("JOTGUARD_KAFKA_SASL_PASSWORD_FILE: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if password == "" {
			return nil, fmt.Errorf("JOTGUARD_KAFKA_SASL_PASSWORD_FILE: %s is empty", c.PasswordFile)
		}
	case password == "":
		return nil, fmt.Errorf("JOTGUARD_KAFKA_SASL_PASSWORD (or _FILE) is required with SASL %s", c.Mechanism)
	}
	switch c.Mechanism {
	case Plain:
		return plain.Mechanism{Username: c.Username, Password: password}, nil
	case ScramSHA256, ScramSHA512:
		algo := scram.SHA256
		if c.Mechanism == ScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, c.Username, password)
		if err != nil { // SASLprep refused the user name or password
			return nil, fmt.Errorf("JOTGUARD_KAFKA_SASL_USERNAME or _PASSWORD: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("JOTGUARD_KAFKA_SASL_MECHANISM: unknown mechanism %q", c.Mechanism)
}

// unused is the error for the first of the settings (name, value pairs)
// that is set although why says it is not used; nil if none is.
func unused(why string, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			return fmt.Errorf("%s is set, but %s", pairs[i], why)
		}
	}
	return nil
}

// Dial timing of the Dialer.
const (
	dialTimeout = 10 * time.Second // TCP, TLS, ApiVersions and SASL together, as kafka.DefaultDialer
	keepAlive   = 30 * time.Second
)

// Dialer returns a kafka-go Dialer that connects as c says, and sends
// clientID (the Kafka client.id that brokers log, and that quotas and ACL
// audit trails use; "": kafka-go's). Its DialFunc does all of it, so its
// TLS and SASLMechanism fields are nil; Transport builds a Transport from
// it. The caller may change Timeout on the Dialer it got.
func (c Config) Dialer(clientID string) (*kafka.Dialer, error) {
	tc, mech, err := c.build()
	if err != nil {
		return nil, err
	}
	s := &securer{tls: tc, mech: mech, user: c.Username, clientID: clientID}
	return &kafka.Dialer{
		ClientID:  clientID,
		Timeout:   dialTimeout,
		DualStack: true,
		KeepAlive: keepAlive,
		DialFunc:  s.dial,
	}, nil
}

// Transport returns a kafka-go Transport that connects as d does: d's
// DialFunc (or a net.Dialer with d's settings), TLS, SASL mechanism and
// client id. Callers set its timeouts and metadata TTL.
func Transport(d *kafka.Dialer) *kafka.Transport {
	dial := d.DialFunc
	if dial == nil {
		dial = (&net.Dialer{Timeout: d.Timeout, KeepAlive: d.KeepAlive, LocalAddr: d.LocalAddr,
			FallbackDelay: d.FallbackDelay}).DialContext
	}
	return &kafka.Transport{Dial: dial, ClientID: d.ClientID, TLS: d.TLS, SASL: d.SASLMechanism}
}

// Errors of a connection's set-up, which Refused reports.
var (
	// ErrTLS: the TLS handshake failed on a certificate (the broker's is
	// not trusted or not for its name, or the broker refused ours).
	ErrTLS = errors.New("kafkasec: TLS refused")
	// ErrSASL: the broker refused the SASL authentication.
	ErrSASL = errors.New("kafkasec: SASL authentication failed")
	// ErrNoAnswer: the broker closed the connection before it sent a
	// byte, which is what a TLS listener does to a plaintext client, and
	// a plaintext listener to a TLS one.
	ErrNoAnswer = errors.New("kafkasec: the broker closed the connection without answering")
)

// Refused reports whether err says that a broker refuses this client (the
// TLS handshake or SASL authentication failed, it would not answer at
// all, or it denied access to a topic or the cluster) rather than that it
// is unreachable or failing. Retrying does not help: a setting must
// change.
func Refused(err error) bool {
	return errors.Is(err, ErrTLS) || errors.Is(err, ErrSASL) || errors.Is(err, ErrNoAnswer) ||
		errors.Is(err, kafka.SASLAuthenticationFailed) || errors.Is(err, kafka.UnsupportedSASLMechanism) ||
		errors.Is(err, kafka.IllegalSASLState) || errors.Is(err, kafka.TopicAuthorizationFailed) ||
		errors.Is(err, kafka.ClusterAuthorizationFailed)
}

// securer secures connections as a Config says.
type securer struct {
	tls      *tls.Config // nil: plaintext
	mech     sasl.Mechanism
	user     string
	clientID string
}

// dial connects to address and secures the connection: TLS handshake,
// ApiVersions, SASL. The context's deadline bounds it all.
func (s *securer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	nd := &net.Dialer{KeepAlive: keepAlive}
	raw, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	conn, err := s.secure(ctx, raw, address)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

func (s *securer) secure(ctx context.Context, raw net.Conn, address string) (net.Conn, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(dialTimeout)
	}
	_ = raw.SetDeadline(deadline)
	// Cancelled: stop waiting. Once set up, the connection is kafka-go's,
	// without a deadline, whenever ctx ends.
	var mu sync.Mutex
	finished := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			_ = raw.SetDeadline(time.Now())
		}
	})
	defer func() {
		stop()
		mu.Lock()
		finished = true
		mu.Unlock()
		_ = raw.SetDeadline(time.Time{})
	}()
	counted := &countingConn{Conn: raw}
	var conn net.Conn = raw // kafka-go gets the plain connection, not the counter
	rw := net.Conn(counted)
	if s.tls != nil {
		tc := s.tls
		if tc.ServerName == "" {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(address)
		}
		tconn := tls.Client(counted, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return nil, s.setupError(fmt.Sprintf("TLS handshake with %s", address), counted, err)
		}
		conn, rw = tconn, tconn
	}
	pc := protocol.NewConn(rw, s.clientID)
	res, err := pc.RoundTrip(new(apiversions.Request))
	if err != nil {
		return nil, s.setupError(fmt.Sprintf("first request to %s", address), counted, err)
	}
	api := res.(*apiversions.Response)
	if api.ErrorCode != 0 {
		return nil, fmt.Errorf("kafkasec: API versions of %s: %w", address, kafka.Error(api.ErrorCode))
	}
	versions := make(map[protocol.ApiKey]int16, len(api.ApiKeys))
	for _, k := range api.ApiKeys {
		key := protocol.ApiKey(k.ApiKey)
		versions[key] = key.SelectVersion(k.MinVersion, k.MaxVersion)
	}
	pc.SetVersions(versions)
	if s.mech != nil {
		if err := s.authenticate(ctx, pc, address); err != nil {
			return nil, err
		}
	}
	// Every response read was whole and the broker sends nothing unasked:
	// pc buffered nothing, and kafka-go can take the connection over.
	return conn, nil
}

// setupError names what failed while setting the connection up: a
// certificate, a TLS alert, or a broker that closed the connection before
// it sent a byte.
func (s *securer) setupError(step string, c *countingConn, err error) error {
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.As(err, &verify), errors.As(err, &header):
		return fmt.Errorf("%w: %s: %w", ErrTLS, step, err)
	case errors.As(err, &op) && op.Op == "remote error": // an alert: the broker refused our certificate
		return fmt.Errorf("%w: %s: the broker refused the connection: %w", ErrTLS, step, err)
	case c.read == 0 && closed(err):
		hint := "a TLS listener does that to a client without TLS"
		if s.tls != nil {
			hint = "a plaintext listener does that to a TLS client"
		}
		return fmt.Errorf("%w: %s (%s): %w", ErrNoAnswer, step, hint, err)
	}
	return fmt.Errorf("kafkasec: %s: %w", step, err)
}

// closed reports whether err means the peer closed the connection.
func closed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// authenticate runs the SASL handshake and exchange on pc, as kafka-go
// does, with errors that say what the broker refused.
func (s *securer) authenticate(ctx context.Context, pc *protocol.Conn, address string) error {
	name := s.mech.Name()
	fail := func(err error) error {
		if errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
			return fmt.Errorf("kafkasec: SASL %s as %q with %s: %w", name, s.user, address, err)
		}
		if closed(err) { // how kfake, and brokers of old, refuse it
			err = fmt.Errorf("the broker closed the connection (wrong user name or password?): %w", err)
		}
		return fmt.Errorf("%w: %s as %q with %s: %w", ErrSASL, name, s.user, address, err)
	}
	res, err := pc.RoundTrip(&saslhandshake.Request{Mechanism: name})
	if err != nil {
		return fail(err)
	}
	if hs := res.(*saslhandshake.Response); hs.ErrorCode != 0 {
		offered := strings.Join(hs.Mechanisms, ", ")
		if offered == "" {
			offered = "none"
		}
		return fail(fmt.Errorf("the broker offers %s: %w", offered, kafka.Error(hs.ErrorCode)))
	}
	host, port, _ := net.SplitHostPort(address)
	n, _ := strconv.Atoi(port)
	ctx = sasl.WithMetadata(ctx, &sasl.Metadata{Host: host, Port: n})
	sess, state, err := s.mech.Start(ctx)
	if err != nil {
		return fail(err)
	}
	for done := false; !done; {
		res, err := pc.RoundTrip(&saslauthenticate.Request{AuthBytes: state})
		if err != nil {
			return fail(err)
		}
		auth := res.(*saslauthenticate.Response)
		if auth.ErrorCode != 0 {
			err := kafka.Error(auth.ErrorCode)
			if auth.ErrorMessage != "" {
				return fail(fmt.Errorf("%w: %s", err, auth.ErrorMessage))
			}
			return fail(err)
		}
		if done, state, err = sess.Next(ctx, auth.AuthBytes); err != nil {
			return fail(err)
		}
	}
	return nil
}

// countingConn counts the bytes read, to tell a broker that closed the
// connection at once from one that closed it later.
type countingConn struct {
	net.Conn
	read int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read += n
	return n, err
}
