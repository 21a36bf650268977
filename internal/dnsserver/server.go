// Package dnsserver runs an authoritative DNS server on 127.0.0.1 (UDP and
// TCP on one port) that answers grpc-go's dns resolver the way a real zone
// would, or with the faults a real zone has: changed and duplicate records,
// empty answers, SERVFAIL, NXDOMAIN, no answer, slow answers and truncated
// UDP answers. It records every query it answers, so a test can tell when a
// client first learned that a backend was gone.
//
// A records carry no port: backends behind one name listen on one port at
// distinct loopback addresses (127.0.0.2, 127.0.0.3, …; Linux routes all of
// 127.0.0.0/8 to lo), and the channel dials Target(name, port).
package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Mode is how the server answers every query, whatever its name and type.
type Mode int

const (
	// Answer answers from the records (the default): the A records of a
	// known name, its _grpc_config TXT record, NOERROR with no records for
	// other types of a known name, NXDOMAIN for an unknown name.
	Answer Mode = iota
	// Empty answers NOERROR with no records.
	Empty
	// ServFail answers SERVFAIL.
	ServFail
	// NXDomain answers NXDOMAIN, as if the name did not exist.
	NXDomain
	// NoAnswer answers nothing: the client times out.
	NoAnswer
	// Truncate answers every UDP query with the TC bit and no records, so
	// the client must ask again over TCP, where it gets the full answer.
	Truncate
)

var modeNames = [...]string{"answer", "empty", "servfail", "nxdomain", "no-answer", "truncate"}

// String returns the mode's name as reports print it.
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// TXTPrefix is the label grpc-go's dns resolver puts before a name to look up
// the name's service config.
const TXTPrefix = "_grpc_config."

// Query is one query the server received and what it did with it.
type Query struct {
	Time   time.Time // when the answer was written (or dropped)
	Net    string    // "udp" or "tcp"
	Name   string    // the name asked, lower case, fully qualified
	Type   string    // "A", "AAAA", "TXT", …
	Mode   Mode      // the mode in force when it was answered
	Rcode  string    // "NOERROR", "SERVFAIL", "NXDOMAIN"; "" when not answered
	TC     bool      // the answer was truncated
	Answer []string  // the records' data: addresses for A, the text for TXT
}

// Answered reports whether the answer is one the resolver hands to the
// channel as a list of addresses: NOERROR or NXDOMAIN, not truncated (an
// empty list included: grpc's resolver passes it on as such).
func (q Query) Answered() bool {
	return (q.Rcode == "NOERROR" || q.Rcode == "NXDOMAIN") && !q.TC
}

// Lists reports whether the answer lists addr.
func (q Query) Lists(addr netip.Addr) bool {
	s := addr.String()
	for _, a := range q.Answer {
		if a == s {
			return true
		}
	}
	return false
}

// Server is an authoritative DNS server on 127.0.0.1. Its methods are safe
// for concurrent use.
type Server struct {
	// Initialized at start, read-only after.
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	done chan struct{} // closed by Close: ends slow answers
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	a       map[string][]netip.Addr // fqdn → A records, in order, duplicates kept
	txt     map[string]string       // fqdn of the _grpc_config name → text
	mode    Mode
	delay   time.Duration
	queries []Query
	counts  map[string]Count // by name, since Start
}

// Count counts the queries for one name since Start, older ones dropped
// from Queries included.
type Count struct {
	Queries  int // every query, all types
	Answered int // A queries answered with a list (Query.Answered)
}

// MaxQueries is how many queries a Server keeps; older ones are dropped
// (Count keeps counting them). A soak's channel asks a few a second.
const MaxQueries = 1 << 13

// Start starts a server on 127.0.0.1, UDP and TCP on one free port.
func Start() (*Server, error) {
	s := &Server{
		done:   make(chan struct{}),
		a:      make(map[string][]netip.Addr),
		txt:    make(map[string]string),
		counts: make(map[string]Count),
	}
	var (
		ln  net.Listener
		pc  net.PacketConn
		err error
	)
	// The TCP port the kernel picks may be taken for UDP: try a few.
	for range 10 {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dnsserver: %v", err)
		}
		pc, err = net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			break
		}
		ln.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dnsserver: no port free for both UDP and TCP: %v", err)
	}
	s.addr = ln.Addr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		s.wg.Add(1)
		errc := make(chan error, 1)
		go func() {
			defer s.wg.Done()
			errc <- srv.ActivateAndServe()
		}()
		select {
		case <-started:
		case err := <-errc:
			s.Close()
			return nil, fmt.Errorf("dnsserver: %v", err)
		}
	}
	return s, nil
}

// Addr returns the server's address, "127.0.0.1:PORT" (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Target returns the grpc target that resolves name through this server,
// "dns://127.0.0.1:PORT/name:port".
func (s *Server) Target(name string, port int) string {
	return fmt.Sprintf("dns://%s/%s:%d", s.addr, name, port)
}

// SetA sets name's A records, in order; a repeated address is answered as
// two records. No address removes the name (NXDOMAIN).
func (s *Server) SetA(name string, addrs ...netip.Addr) error {
	for _, a := range addrs {
		if !a.Is4() {
			return fmt.Errorf("dnsserver: A record %v for %s: not an IPv4 address", a, name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(addrs) == 0 {
		delete(s.a, fqdn(name))
		return nil
	}
	s.a[fqdn(name)] = append([]netip.Addr(nil), addrs...)
	return nil
}

// SetServiceConfig sets the service config grpc-go's dns resolver reads for
// name: a TXT record at _grpc_config.<name> holding
// grpc_config=[{"serviceConfig": sc}]. An empty sc removes the record.
func (s *Server) SetServiceConfig(name, sc string) {
	s.setTXT(TXTPrefix+name, func() string {
		if sc == "" {
			return ""
		}
		return `grpc_config=[{"serviceConfig":` + sc + `}]`
	}())
}

// SetTXT sets the raw text of name's TXT record ("" removes it), for a test
// of what a resolver does with a malformed one.
func (s *Server) SetTXT(name, text string) { s.setTXT(name, text) }

func (s *Server) setTXT(name, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if text == "" {
		delete(s.txt, fqdn(name))
		return
	}
	s.txt[fqdn(name)] = text
}

// SetMode sets how every following query is answered.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// SetDelay delays every following answer by d (0: answer at once). A
// delayed answer is answered from the records and mode in force when it is
// written.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Queries returns the queries answered so far, oldest first.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// CountOf returns the count of the queries for name.
func (s *Server) CountOf(name string) Count {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[fqdn(name)]
}

// FirstWithout returns the first A query for name at or after since whose
// answer the resolver passes on (Query.Answered) and does not list addr:
// from then on a client that asked knows addr is gone.
func (s *Server) FirstWithout(name string, addr netip.Addr, since time.Time) (Query, bool) {
	n := fqdn(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queries {
		if q.Name == n && q.Type == "A" && !q.Time.Before(since) && q.Answered() && !q.Lists(addr) {
			return q, true
		}
	}
	return Query{}, false
}

// Close stops the server and waits for every answer in progress.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	var errs []error
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv != nil {
			if err := srv.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dnsserver: close: %w", err)
	}
	return nil
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return
		}
	}
	network := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	q := Query{Net: network, Mode: s.mode}
	if len(req.Question) > 0 {
		q.Name = strings.ToLower(req.Question[0].Name)
		q.Type = dns.TypeToString[req.Question[0].Qtype]
	}
	resp := s.answerLocked(req, &q)
	if resp != nil {
		if network == "udp" {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			resp.Truncate(size)
		}
		q.TC = resp.Truncated
		q.Rcode = dns.RcodeToString[resp.Rcode]
		// The client may have gone; what it was sent is recorded either way.
		_ = w.WriteMsg(resp)
	}
	q.Time = time.Now()
	c := s.counts[q.Name]
	c.Queries++
	if q.Type == "A" && q.Answered() {
		c.Answered++
	}
	s.counts[q.Name] = c
	if len(s.queries) == MaxQueries {
		s.queries = append(s.queries[:0], s.queries[MaxQueries/2:]...)
	}
	s.queries = append(s.queries, q)
}

// answerLocked builds the answer to req, or nil for none, and records the
// records' data in q. Caller must hold s.mu.
func (s *Server) answerLocked(req *dns.Msg, q *Query) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	switch s.mode {
	case NoAnswer:
		return nil
	case Empty:
		return resp
	case ServFail:
		resp.Rcode = dns.RcodeServerFailure
		return resp
	case NXDomain:
		resp.Rcode = dns.RcodeNameError
		return resp
	case Truncate:
		if q.Net == "udp" {
			resp.Truncated = true
			return resp
		}
	}
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	name := q.Name
	addrs, hasA := s.a[name]
	text, hasTXT := s.txt[name]
	if !hasA && !hasTXT {
		resp.Rcode = dns.RcodeNameError
		return resp
	}
	hdr := dns.RR_Header{Name: req.Question[0].Name, Class: dns.ClassINET, Ttl: 0}
	switch req.Question[0].Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		for _, a := range addrs {
			ip := a.As4()
			resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: net.IP(ip[:])})
			q.Answer = append(q.Answer, a.String())
		}
	case dns.TypeTXT:
		if hasTXT {
			hdr.Rrtype = dns.TypeTXT
			resp.Answer = append(resp.Answer, &dns.TXT{Hdr: hdr, Txt: split(text, 255)})
			q.Answer = append(q.Answer, text)
		}
	}
	return resp
}

// split cuts s into strings of at most n bytes: a TXT record's strings are
// at most 255 bytes each, and grpc joins them again.
func split(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }
