package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// defaultMaxRecv is the CLI's receive limit: a CheckLeaks answer for a mass
// leak carries every problem with its events, far past grpc's 4 MiB.
const defaultMaxRecv = 256 << 20

// connFlags are the flags every live command shares: where the admin
// service is and how to reach it.
type connFlags struct {
	addr       string
	tls        bool
	ca         string
	cert, key  string
	serverName string
	headers    headerFlag
	tokenFile  string
	maxRecv    int

	md metadata.MD // built by check
}

// headerFlag collects repeated --header 'name: value' flags.
type headerFlag []string

func (h *headerFlag) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlag) Set(v string) error { *h = append(*h, v); return nil }

// addConnFlags registers the connection flags on fs; required says whether
// --addr must be given.
func addConnFlags(fs *flag.FlagSet, addrHelp string) *connFlags {
	c := &connFlags{}
	fs.StringVar(&c.addr, "addr", "", addrHelp)
	fs.BoolVar(&c.tls, "tls", false, "connect with TLS, verifying the server against the system roots (or --ca)")
	fs.StringVar(&c.ca, "ca", "", "verify the server against the PEM CA certificates in `FILE` (implies --tls)")
	fs.StringVar(&c.cert, "cert", "", "present the PEM client certificate in `FILE`, for mTLS (implies --tls; needs --cert-key)")
	// Not --key: watch's --key is the backend key filter.
	fs.StringVar(&c.key, "cert-key", "", "the PEM private key of --cert, in `FILE`")
	fs.StringVar(&c.serverName, "server-name", "", "the `NAME` the server's certificate must carry, and the call's authority (default: the host of --addr)")
	fs.Var(&c.headers, "header", "send the metadata `'NAME: VALUE'` on every call (repeatable), e.g. 'authorization: Bearer TOKEN'")
	fs.StringVar(&c.tokenFile, "token-file", "", "send 'authorization: Bearer <the contents of FILE>' on every call (needs TLS)")
	fs.IntVar(&c.maxRecv, "max-recv-bytes", defaultMaxRecv, "the largest response accepted, in `BYTES`")
	return c
}

// check validates the flags and reads the token file. Its errors are usage
// errors.
func (c *connFlags) check() error {
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT: %v", c.addr, err)
	}
	if (c.cert == "") != (c.key == "") {
		return errors.New("--cert and --cert-key go together")
	}
	if c.maxRecv < 1 {
		return fmt.Errorf("--max-recv-bytes %d: want 1 or more", c.maxRecv)
	}
	c.tls = c.tls || c.ca != "" || c.cert != ""
	c.md = metadata.MD{}
	for _, h := range c.headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" || strings.HasPrefix(name, ":") || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("--header %q: want 'NAME: VALUE'", h)
		}
		c.md.Append(name, strings.TrimSpace(value))
	}
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %v", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, "\r\n") {
			return fmt.Errorf("--token-file %s: want one line holding the token", c.tokenFile)
		}
		c.md.Append("authorization", "Bearer "+tok)
	}
	if len(c.md.Get("authorization")) > 0 && !c.tls {
		return errors.New("an authorization header needs --tls (it would cross the network in clear text)")
	}
	return nil
}

// dial returns a client connection to the admin service. grpc connects
// lazily: the first RPC reports an unreachable address or a failed
// handshake.
func (c *connFlags) dial() (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if c.tls {
		cfg := &tls.Config{ServerName: c.serverName, MinVersion: tls.VersionTLS12}
		if c.ca != "" {
			pem, err := os.ReadFile(c.ca)
			if err != nil {
				return nil, fmt.Errorf("--ca: %v", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca %s: no PEM certificate in it", c.ca)
			}
		}
		if c.cert != "" {
			kp, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				return nil, fmt.Errorf("--cert/--cert-key: %v", err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.maxRecv)),
	}
	if c.serverName != "" {
		opts = append(opts, grpc.WithAuthority(c.serverName))
	}
	return grpc.NewClient("passthrough:///"+c.addr, opts...)
}

// outgoing returns ctx carrying the --header and --token-file metadata.
func (c *connFlags) outgoing(ctx context.Context) context.Context {
	if len(c.md) == 0 {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, c.md)
}
