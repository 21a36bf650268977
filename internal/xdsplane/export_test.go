package xdsplane

import v3cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"

// HistoryLen is the number of versions the server keeps for rollbacks.
func (s *Server) HistoryLen() int { return s.historyLen() }

// InHistory reports whether the server keeps version v of typeURL.
func (s *Server) InHistory(typeURL, v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.history[v3cache.GetResponseType(typeURL)][v]
	return ok
}

// KeptVersions is keptVersions.
const KeptVersions = keptVersions
