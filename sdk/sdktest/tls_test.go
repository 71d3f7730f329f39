package sdktest_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"slices"
	"testing"

	"github.com/jotguard/jotguard/sdk/sdktest"
)

func TestTLSFiles(t *testing.T) {
	f := sdktest.NewTLSFiles(t)
	pool := func(path string) *x509.CertPool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			t.Fatalf("%s: no certificate", path)
		}
		return p
	}
	for _, pair := range [][2]string{{f.ServerCert, f.ServerKey}, {f.ClientCert, f.ClientKey}} {
		kp, err := tls.LoadX509KeyPair(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(kp.Certificate[0])
		usage := x509.ExtKeyUsageClientAuth
		if pair[0] == f.ServerCert {
			usage = x509.ExtKeyUsageServerAuth
			for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
				if err := leaf.VerifyHostname(host); err != nil {
					t.Errorf("server certificate: %v", err)
				}
			}
		}
		opts := x509.VerifyOptions{Roots: pool(f.CA), KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("%s does not verify against the CA: %v", pair[0], err)
		}
		opts.Roots = pool(f.OtherCA)
		if _, err := leaf.Verify(opts); err == nil {
			t.Errorf("%s verifies against the other CA", pair[0])
		}
	}
}

func TestKafkaSecurityArgsAndEnv(t *testing.T) {
	f := sdktest.NewTLSFiles(t)
	s := sdktest.KafkaSecurity{Mechanism: "SCRAM-SHA-256", User: "u", Password: "p", TLS: f, MutualTLS: true}
	args := s.DevstackArgs()
	for _, want := range []string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-tls-cert", f.ServerCert, "--kafka-tls-client-ca", f.CA} {
		if !slices.Contains(args, want) {
			t.Errorf("DevstackArgs() = %v, lacks %s", args, want)
		}
	}
	env := s.Env()
	if env["JOTGUARD_KAFKA_TLS"] != "on" || env["JOTGUARD_KAFKA_TLS_CA_FILE"] != f.CA ||
		env["JOTGUARD_KAFKA_TLS_CERT_FILE"] != f.ClientCert || env["JOTGUARD_KAFKA_SASL_PASSWORD"] != "p" {
		t.Errorf("Env() = %v", env)
	}
	if len((sdktest.KafkaSecurity{}).DevstackArgs()) != 0 || len((sdktest.KafkaSecurity{}).Env()) != 0 {
		t.Error("no security: want no flags and no settings")
	}
}
