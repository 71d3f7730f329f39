package kafkasec_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jotguard/jotguard/sdk/kafkasec"
	"github.com/jotguard/jotguard/sdk/sdktest"
)

// load applies env as a binary does: each setting's value or default,
// then Check.
func load(env map[string]string) (kafkasec.Config, error) {
	var c kafkasec.Config
	for _, s := range kafkasec.Settings() {
		v := env[s.Name]
		if v == "" {
			v = s.Default
		}
		if v == "" {
			continue
		}
		if err := s.Set(&c, v); err != nil {
			return c, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return c, c.Check()
}

func TestSettings(t *testing.T) {
	pki := sdktest.NewTLSFiles(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string // the variable the error names; "" : no error
	}{
		{"defaults: plaintext, no SASL", nil, ""},
		{"TLS with the system roots", map[string]string{"JOTGUARD_KAFKA_TLS": "on"}, ""},
		{"TLS with a CA and a client certificate", map[string]string{"JOTGUARD_KAFKA_TLS": "true",
			"JOTGUARD_KAFKA_TLS_CA_FILE": pki.CA, "JOTGUARD_KAFKA_TLS_CERT_FILE": pki.ClientCert,
			"JOTGUARD_KAFKA_TLS_KEY_FILE": pki.ClientKey, "JOTGUARD_KAFKA_TLS_SERVER_NAME": "b-1.example.com"}, ""},
		{"SCRAM with a password", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"JOTGUARD_KAFKA_SASL_USERNAME": "jotguard", "JOTGUARD_KAFKA_SASL_PASSWORD": "s3cret"}, ""},
		{"mechanism in lower case, password from a file", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "scram-sha-256",
			"JOTGUARD_KAFKA_SASL_USERNAME": "jotguard", "JOTGUARD_KAFKA_SASL_PASSWORD_FILE": pwFile}, ""},
		{"TLS neither on nor off", map[string]string{"JOTGUARD_KAFKA_TLS": "required"}, "JOTGUARD_KAFKA_TLS"},
		{"unknown mechanism", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "GSSAPI",
			"JOTGUARD_KAFKA_SASL_USERNAME": "u", "JOTGUARD_KAFKA_SASL_PASSWORD": "p"}, "JOTGUARD_KAFKA_SASL_MECHANISM"},
		{"a user name without a mechanism", map[string]string{"JOTGUARD_KAFKA_SASL_USERNAME": "u"}, "JOTGUARD_KAFKA_SASL_USERNAME"},
		{"a password without a mechanism", map[string]string{"JOTGUARD_KAFKA_SASL_PASSWORD": "p"}, "JOTGUARD_KAFKA_SASL_PASSWORD"},
		{"a mechanism without a user name", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
			"JOTGUARD_KAFKA_SASL_PASSWORD": "p"}, "JOTGUARD_KAFKA_SASL_USERNAME"},
		{"a mechanism without a password", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
			"JOTGUARD_KAFKA_SASL_USERNAME": "u"}, "JOTGUARD_KAFKA_SASL_PASSWORD"},
		{"a password and a password file", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
			"JOTGUARD_KAFKA_SASL_USERNAME": "u", "JOTGUARD_KAFKA_SASL_PASSWORD": "p",
			"JOTGUARD_KAFKA_SASL_PASSWORD_FILE": pwFile}, "JOTGUARD_KAFKA_SASL_PASSWORD_FILE"},
		{"password file missing", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
			"JOTGUARD_KAFKA_SASL_USERNAME": "u", "JOTGUARD_KAFKA_SASL_PASSWORD_FILE": missing}, "JOTGUARD_KAFKA_SASL_PASSWORD_FILE"},
		{"password file empty", map[string]string{"JOTGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
			"JOTGUARD_KAFKA_SASL_USERNAME": "u", "JOTGUARD_KAFKA_SASL_PASSWORD_FILE": empty}, "JOTGUARD_KAFKA_SASL_PASSWORD_FILE"},
		{"CA file missing", map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_CA_FILE": missing},
			"JOTGUARD_KAFKA_TLS_CA_FILE"},
		{"CA file not PEM", map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_CA_FILE": pwFile},
			"JOTGUARD_KAFKA_TLS_CA_FILE"},
		{"client certificate missing", map[string]string{"JOTGUARD_KAFKA_TLS": "on",
			"JOTGUARD_KAFKA_TLS_CERT_FILE": missing, "JOTGUARD_KAFKA_TLS_KEY_FILE": pki.ClientKey}, "JOTGUARD_KAFKA_TLS_CERT_FILE"},
		{"client key missing", map[string]string{"JOTGUARD_KAFKA_TLS": "on",
			"JOTGUARD_KAFKA_TLS_CERT_FILE": pki.ClientCert, "JOTGUARD_KAFKA_TLS_KEY_FILE": missing}, "JOTGUARD_KAFKA_TLS_KEY_FILE"},
		{"a certificate without its key", map[string]string{"JOTGUARD_KAFKA_TLS": "on",
			"JOTGUARD_KAFKA_TLS_CERT_FILE": pki.ClientCert}, "JOTGUARD_KAFKA_TLS_KEY_FILE"},
		{"a key that is not the certificate's", map[string]string{"JOTGUARD_KAFKA_TLS": "on",
			"JOTGUARD_KAFKA_TLS_CERT_FILE": pki.ClientCert, "JOTGUARD_KAFKA_TLS_KEY_FILE": pki.ServerKey}, "JOTGUARD_KAFKA_TLS_CERT_FILE"},
		{"a CA file with TLS off", map[string]string{"JOTGUARD_KAFKA_TLS_CA_FILE": pki.CA}, "JOTGUARD_KAFKA_TLS_CA_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.env)
			switch {
			case tt.wantVar == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantVar == "":
				return
			case err == nil:
				t.Fatalf("no error, want one naming %s", tt.wantVar)
			case !strings.HasPrefix(err.Error(), tt.wantVar+" ") && !strings.HasPrefix(err.Error(), tt.wantVar+":"):
				t.Fatalf("error %q does not start with %s", err, tt.wantVar)
			case strings.Contains(err.Error(), "\n"):
				t.Fatalf("error %q is more than one line", err)
			}
		})
	}
}

// TestPasswordNeverShown: the password shows neither in logs (text or
// JSON) nor in %v, %+v or %#v of the Config.
func TestPasswordNeverShown(t *testing.T) {
	c, err := load(map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_SASL_MECHANISM": "PLAIN",
		"JOTGUARD_KAFKA_SASL_USERNAME": "jotguard", "JOTGUARD_KAFKA_SASL_PASSWORD": "hunter2-s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("kafka", "security", c, "password", c.Password)
	slog.New(slog.NewTextHandler(&out, nil)).Info("kafka", "security", c)
	fmt.Fprintf(&out, "%v %+v %#v %s", c, c, c, c.Password)
	if strings.Contains(out.String(), "hunter2") {
		t.Fatalf("the password shows:\n%s", out.String())
	}
	for _, want := range []string{`"sasl":"PLAIN"`, `"username":"jotguard"`, `"password":"[redacted]"`, `"tls":"on"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, out.String())
		}
	}
	if w := c.Warning(); w != "" {
		t.Errorf("PLAIN over TLS: warning %q", w)
	}
	c.TLS = false
	if w := c.Warning(); !strings.Contains(w, "clear") {
		t.Errorf("PLAIN without TLS: warning %q, want one about the password in the clear", w)
	}
}

func TestTransportConnectsAsTheDialer(t *testing.T) {
	d, err := kafkasec.Config{}.Dialer("jotguard-test")
	if err != nil {
		t.Fatal(err)
	}
	tr := kafkasec.Transport(d)
	if tr.Dial == nil || tr.ClientID != "jotguard-test" || tr.TLS != nil || tr.SASL != nil {
		t.Fatalf("Transport: dial set %t, client id %q, TLS %v, SASL %v", tr.Dial != nil, tr.ClientID, tr.TLS, tr.SASL)
	}
	if d.TLS != nil || d.SASLMechanism != nil || d.DialFunc == nil {
		t.Fatal("the Dialer leaves TLS and SASL to kafka-go: they would run twice")
	}
}

// listen serves each connection with serve on loopback until the test
// ends, and returns the address.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSetupFailuresAreNamed: a connection that fails while it is being
// secured says why, and Refused says the broker refuses the client, for
// the failures that a setting causes, and not for an unreachable broker.
func TestSetupFailuresAreNamed(t *testing.T) {
	pki := sdktest.NewTLSFiles(t)
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	tlsListener := listen(t, func(c net.Conn) { // a TLS listener that requires client certificates
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
	})
	plaintext := listen(t, func(c net.Conn) { // reads a request it does not like, and hangs up
		_, _ = c.Read(make([]byte, 64))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name    string
		env     map[string]string
		addr    string
		want    error // nil: not refused
		message string
	}{
		{"no TLS to a TLS listener", nil, tlsListener, kafkasec.ErrNoAnswer, "client without TLS"},
		{"TLS to a plaintext listener", map[string]string{"JOTGUARD_KAFKA_TLS": "on"}, plaintext, kafkasec.ErrNoAnswer, "plaintext listener"},
		{"an untrusted CA", map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_CA_FILE": pki.OtherCA},
			tlsListener, kafkasec.ErrTLS, "unknown authority"},
		{"the system roots for a private CA", map[string]string{"JOTGUARD_KAFKA_TLS": "on"}, tlsListener, kafkasec.ErrTLS, "certificate"},
		{"a name the certificate does not hold", map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_CA_FILE": pki.CA,
			"JOTGUARD_KAFKA_TLS_SERVER_NAME": "b-1.example.com"}, tlsListener, kafkasec.ErrTLS, "b-1.example.com"},
		{"no client certificate for mutual TLS", map[string]string{"JOTGUARD_KAFKA_TLS": "on", "JOTGUARD_KAFKA_TLS_CA_FILE": pki.CA},
			tlsListener, kafkasec.ErrTLS, "certificate required"},
		{"the broker is down", nil, down, nil, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.Dialer("")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := d.DialFunc(ctx, "tcp", tt.addr)
			if err == nil {
				conn.Close()
				t.Fatal("connected")
			}
			t.Logf("%v", err)
			if tt.want != nil && !errors.Is(err, tt.want) || kafkasec.Refused(err) != (tt.want != nil) {
				t.Errorf("error %v: want %v, Refused %t", err, tt.want, tt.want != nil)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
		})
	}
}

// TestSilentBrokerDoesNotHang: a broker that accepts the connection and
// never answers holds a dial only until its context ends.
func TestSilentBrokerDoesNotHang(t *testing.T) {
	silent := listen(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	d, err := kafkasec.Config{Mechanism: kafkasec.Plain, Username: "u", Password: "p"}.Dialer("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context()) // no deadline: only the cancel ends it
	done := make(chan error, 1)
	go func() {
		conn, err := d.DialFunc(ctx, "tcp", silent)
		if conn != nil {
			conn.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it reach the read
	cancel()
	select {
	case err := <-done:
		if err == nil || kafkasec.Refused(err) {
			t.Fatalf("error %v, want a plain failure (not a refusal)", err)
		}
	case <-time.After(5 * time.Second): // a hang detector: the set-up's own bound is 10 s
		t.Fatal("the dial did not end when its context was cancelled")
	}
}
