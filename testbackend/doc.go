// Package testbackend starts real gRPC servers on 127.0.0.1 that serve
// leakproof.echo.v1.EchoService and grpc.health.v1.Health: call Start, dial
// Addr, and Close when done.
//
// A Backend can be made to misbehave the ways deployed servers do, so that
// tests, examples and the soak runner can provoke every fault in leakproof's
// catalogue over a real loopback network:
//
//   - GOAWAY storms: the Keepalive option (MaxConnectionAge of tens of
//     milliseconds), or SetKeepalive on a running backend.
//   - Abrupt close: ResetConns sends a TCP RST on every open connection, and
//     the ResetAfter option resets each accepted connection after a delay.
//   - Restarts: Stop and GracefulStop, then Restart on the same port.
//   - Connection-limit freezes: ConnLimit serves the first k connections and
//     holds further ones open without ever speaking HTTP/2; Frozen (and
//     Freeze on a running backend) holds all. A held connection is read and
//     discarded, never answered, so a client that closes or resets it is
//     noticed and the backend closes its end; Thaw ends a freeze and resets
//     what it held, as a server restarted out of its stall. A frozen backend
//     therefore holds at most the connections its clients keep trying, never
//     a pile of dead ones. StallForever is the other model, a server that
//     never notices and never recovers, for tests that must see it caught.
//   - TLS handshake failures: TLS serves a certificate from an in-memory CA;
//     a client that trusts another CA fails the handshake.
//
// Stats reports what the server saw (connections accepted, open and held,
// RPCs served) so a test can cross-check the client side, and Inodes names
// the backend's sockets so that a process running clients and backends
// together can tell their descriptors apart.
//
// A Backend listens only on 127.0.0.1. Its API takes no *testing.T: it is
// used from tests and from the soak command alike.
package testbackend
