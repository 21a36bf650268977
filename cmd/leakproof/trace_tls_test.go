package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/leaktest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and
// "admin.internal", and a client certificate, written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string // the CA; the client's certificate and key
	serverCert                tls.Certificate
	clientCAs                 *x509.CertPool
	otherCAFile               string // a CA that signed nothing here
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	ca, caKey, caPEM := newCA(t, "leakproof test CA")
	_, _, otherPEM := newCA(t, "some other CA")
	p.caFile = p.write(t, "ca.pem", caPEM)
	p.otherCAFile = p.write(t, "other-ca.pem", otherPEM)
	p.clientCAs = x509.NewCertPool()
	p.clientCAs.AddCert(ca)

	srvPEM, srvKeyPEM := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin.internal"},
		DNSNames:    []string{"admin.internal"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	var err error
	if p.serverCert, err = tls.X509KeyPair(srvPEM, srvKeyPEM); err != nil {
		t.Fatal(err)
	}
	cliPEM, cliKeyPEM := issue(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "operator"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.certFile = p.write(t, "client.pem", cliPEM)
	p.keyFile = p.write(t, "client-key.pem", cliKeyPEM)
	return p
}

func (p *testPKI) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

var serial int64

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// serveAdminTLS serves the admin service on 127.0.0.1 with TLS only; with
// mTLS, clients must present a certificate of the test CA; with token, every
// call must carry "authorization: Bearer <token>".
func serveAdminTLS(t *testing.T, p *testPKI, mTLS bool, token string) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.serverCert}, MinVersion: tls.VersionTLS12}
	if mTLS {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.clientCAs
	}
	opts := []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg))}
	if token != "" {
		check := func(ctx context.Context) error {
			md, _ := metadata.FromIncomingContext(ctx)
			if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer "+token {
				return status.Error(codes.Unauthenticated, "bearer token required")
			}
			return nil
		}
		opts = append(opts,
			grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if err := check(ctx); err != nil {
					return nil, err
				}
				return h(ctx, req)
			}),
			grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				if err := check(ss.Context()); err != nil {
					return err
				}
				return h(srv, ss)
			}))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	admin.Register(s)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func TestTraceReachesATLSAdminServer(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	p := newTestPKI(t)
	addr := serveAdminTLS(t, p, false, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr; "" means success
	}{
		{"plaintext to a TLS port", nil, "cannot reach the admin service"},
		{"system roots", []string{"--tls"}, "check --tls, --ca"},
		{"another CA", []string{"--ca", p.otherCAFile}, "check --tls, --ca"},
		{"the CA", []string{"--ca", p.caFile}, ""},
		{"server name", []string{"--ca", p.caFile, "--server-name", "admin.internal"}, ""},
		{"wrong server name", []string{"--ca", p.caFile, "--server-name", "other.internal"}, "check --tls, --ca"},
	} {
		for _, cmd := range [][]string{{"list"}, {"check"}, {"watch", "--from", "1", "--count", "1"}} {
			if cmd[0] == "watch" && tc.want == "" {
				continue // a watch of a quiet process waits; covered below
			}
			args := append(append(append([]string{}, cmd...), "--addr", addr, "--timeout", "5s"), tc.args...)
			if cmd[0] == "watch" {
				args = append(append([]string{}, cmd...), append([]string{"--addr", addr}, tc.args...)...)
			}
			code, out, errOut := runTrace(t, ctx, "", args...)
			switch {
			case tc.want == "" && code != exitOK:
				t.Errorf("%s: trace %q: exit %d\n%s%s", tc.name, args, code, out, errOut)
			case tc.want != "" && (code != exitError || !strings.Contains(errOut, tc.want)):
				t.Errorf("%s: trace %q: exit %d, stderr %q; want 2 naming %q", tc.name, args, code, errOut, tc.want)
			}
		}
	}
}

func TestTraceReachesAnMTLSAdminServerWithAToken(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	p := newTestPKI(t)
	const token = "s3cret-token"
	addr := serveAdminTLS(t, p, true, token)
	tokenFile := p.write(t, "token", []byte(token+"\n"))
	badToken := p.write(t, "bad-token", []byte("nope\n"))
	ctx := context.Background()
	mtls := []string{"--ca", p.caFile, "--cert", p.certFile, "--cert-key", p.keyFile}
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr; "" means success
	}{
		{"no client certificate", []string{"--ca", p.caFile, "--token-file", tokenFile}, "cannot reach the admin service"},
		{"no token", mtls, "refused the call (Unauthenticated"},
		{"a wrong token", append([]string{"--token-file", badToken}, mtls...), "refused the call (Unauthenticated"},
		{"token file", append([]string{"--token-file", tokenFile}, mtls...), ""},
		{"header", append([]string{"--header", "Authorization: Bearer " + token}, mtls...), ""},
	} {
		for _, cmd := range []string{"list", "check"} {
			args := append([]string{cmd, "--addr", addr, "--timeout", "5s"}, tc.args...)
			code, out, errOut := runTrace(t, ctx, "", args...)
			switch {
			case tc.want == "" && code != exitOK:
				t.Errorf("%s: trace %q: exit %d\n%s%s", tc.name, args, code, out, errOut)
			case tc.want != "" && (code != exitError || !strings.Contains(errOut, tc.want)):
				t.Errorf("%s: trace %q: exit %d, stderr %q; want 2 naming %q", tc.name, args, code, errOut, tc.want)
			}
		}
	}
	// A watch is a stream: the token and the certificate reach it too.
	args := append([]string{"watch", "--addr", addr, "--token-file", tokenFile}, mtls...)
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if code, out, errOut := runTrace(t, wctx, "", args...); code != exitOK {
		t.Errorf("trace %q: exit %d\n%s%s", args, code, out, errOut)
	}
	args = append([]string{"watch", "--addr", addr}, mtls...)
	if code, _, errOut := runTrace(t, ctx, "", args...); code != exitError || !strings.Contains(errOut, "Unauthenticated") {
		t.Errorf("watch without a token: exit %d, %q", code, errOut)
	}
}

func TestTraceConnectionFlagErrors(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	if err := os.WriteFile(tok, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", tok}, "needs --tls"},
		{[]string{"--header", "authorization: Bearer x"}, "needs --tls"},
		{[]string{"--tls", "--token-file", filepath.Join(dir, "missing")}, "--token-file"},
		{[]string{"--tls", "--token-file", empty}, "want one line holding the token"},
		{[]string{"--header", "no colon"}, "want 'NAME: VALUE'"},
		{[]string{"--header", ":authority: x"}, "want 'NAME: VALUE'"},
		{[]string{"--cert", tok}, "--cert and --cert-key go together"},
		{[]string{"--max-recv-bytes", "0"}, "--max-recv-bytes 0"},
		{[]string{"--page-size", "0"}, "--page-size 0"},
	} {
		args := append([]string{"list", "--addr", "127.0.0.1:1"}, tc.args...)
		code, _, errOut := runTrace(t, context.Background(), "", args...)
		if code != exitError || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "usage:") {
			t.Errorf("trace %q: exit %d, %q; want 2 and a usage naming %q", args, code, errOut, tc.want)
		}
	}
	// A CA file without a certificate is reported before any call.
	args := []string{"check", "--addr", "127.0.0.1:1", "--ca", tok}
	if code, _, errOut := runTrace(t, context.Background(), "", args...); code != exitError || !strings.Contains(errOut, "no PEM certificate") {
		t.Errorf("trace %q: exit %d, %q", args, code, errOut)
	}
}
