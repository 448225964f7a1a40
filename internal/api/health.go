package api

import "net/http"

// handleHealthz answers 200 while the process runs: liveness.
func (s *Server) handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz answers 200 when a model is loaded and the server is not draining: readiness.
func (s *Server) handleReadyz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.Draining():
			s.fail(w, r, &Error{Kind: KindUnavailable, Detail: "draining: shutting down"})
		case s.engine.Model() == nil:
			s.fail(w, r, &Error{Kind: KindUnavailable, Detail: "no model loaded"})
		default:
			m := s.engine.Model()
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "model": m.Name, "version": m.Version})
		}
	}
}
