package soak

import "errors"

// dnsAvailable reports whether ResolverDNS can run: Config.Validate
// rejects it until the DNS feed exists.
const dnsAvailable = false

// newDNSFeed returns the feed of ResolverDNS: a DNS server on 127.0.0.1
// and grpc's dns resolver.
func newDNSFeed(*runner) (feed, error) {
	return nil, errors.New("soak: resolver dns is not available yet")
}
