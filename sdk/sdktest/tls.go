package sdktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TLSFiles are the PEM files of a throwaway PKI made for one test, in its
// TempDir: a CA, a server certificate for 127.0.0.1 and localhost and a
// client certificate, both signed by the CA, and another CA that signed
// neither.
type TLSFiles struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string // for 127.0.0.1, ::1 and localhost
	ClientCert, ClientKey string // for mutual TLS
	// OtherCA signed none of these: a client that trusts only it refuses
	// the server, and a server that trusts only it refuses the client.
	OtherCA string
}

// NewTLSFiles generates the certificates (ECDSA P-256, valid from an hour
// ago for a day) and writes them to files.
func NewTLSFiles(tb testing.TB) *TLSFiles {
	tb.Helper()
	dir := tb.TempDir()
	f := &TLSFiles{}
	ca, caKey := makeCert(tb, dir, "ca", &f.CA, nil, nil, pkix.Name{CommonName: "jotguard test CA"}, nil)
	makeCert(tb, dir, "server", &f.ServerCert, ca, caKey, pkix.Name{CommonName: "localhost"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	makeCert(tb, dir, "client", &f.ClientCert, ca, caKey, pkix.Name{CommonName: "jotguard test client"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	makeCert(tb, dir, "other-ca", &f.OtherCA, nil, nil, pkix.Name{CommonName: "another test CA"}, nil)
	f.ServerKey = filepath.Join(dir, "server.key")
	f.ClientKey = filepath.Join(dir, "client.key")
	return f
}

// makeCert writes name.pem (to *certPath) and name.key; a nil parent
// makes a self-signed CA.
func makeCert(tb testing.TB, dir, name string, certPath *string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey,
	subject pkix.Name, usage []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: subject,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage, BasicConstraintsValid: true}
	if parent == nil {
		tmpl.IsCA, tmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else if slices.Contains(usage, x509.ExtKeyUsageServerAuth) {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	*certPath = filepath.Join(dir, name+".pem")
	writePEM(tb, *certPath, "CERTIFICATE", der)
	writePEM(tb, filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER)
	return cert, key
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// KafkaSecurity is what a dev-stack Kafka requires of its clients, for
// tests of secured connections: the flags that start it (DevstackArgs) and
// the settings of a client that meets them (Env).
type KafkaSecurity struct {
	Mechanism      string    // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; "": no SASL
	User, Password string    // the broker's one SASL user
	TLS            *TLSFiles // nil: plaintext
	MutualTLS      bool      // the broker requires a client certificate signed by TLS.CA
}

// DevstackArgs are the flags of `devstack --only kafka` (StartDevstack)
// for a broker that requires s.
func (s KafkaSecurity) DevstackArgs() []string {
	var args []string
	if s.Mechanism != "" {
		args = append(args, "--kafka-sasl-mechanism", s.Mechanism, "--kafka-sasl-user", s.User,
			"--kafka-sasl-password", s.Password)
	}
	if s.TLS != nil {
		args = append(args, "--kafka-tls-cert", s.TLS.ServerCert, "--kafka-tls-key", s.TLS.ServerKey)
		if s.MutualTLS {
			args = append(args, "--kafka-tls-client-ca", s.TLS.CA)
		}
	}
	return args
}

// Env returns the JOTGUARD_KAFKA_TLS* and JOTGUARD_KAFKA_SASL_* settings
// of a client that meets s (TLS trusting TLS.CA, with the client
// certificate when MutualTLS). A test edits the map for a client that
// does not.
func (s KafkaSecurity) Env() map[string]string {
	env := map[string]string{}
	if s.Mechanism != "" {
		env["JOTGUARD_KAFKA_SASL_MECHANISM"] = s.Mechanism
		env["JOTGUARD_KAFKA_SASL_USERNAME"] = s.User
		env["JOTGUARD_KAFKA_SASL_PASSWORD"] = s.Password
	}
	if s.TLS != nil {
		env["JOTGUARD_KAFKA_TLS"] = "on"
		env["JOTGUARD_KAFKA_TLS_CA_FILE"] = s.TLS.CA
		if s.MutualTLS {
			env["JOTGUARD_KAFKA_TLS_CERT_FILE"] = s.TLS.ClientCert
			env["JOTGUARD_KAFKA_TLS_KEY_FILE"] = s.TLS.ClientKey
		}
	}
	return env
}
