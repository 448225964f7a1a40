package api

import "net/http"

// handleHealthz answers 200 while the process runs: liveness.
func (s *Server) handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz answers 200 when a model is loaded and the server is not draining: readiness. A 503 here answers a
// probe; no request was refused, so it is not counted in rejections_total. A registry whose store fails (an
// unreachable bucket) does not make the replica unready, since it serves what it has loaded; the answer names the
// error, so an operator sees it.
func (s *Server) handleReadyz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.Draining():
			writeError(w, r, s.log, &Error{Kind: KindUnavailable, Detail: "draining: shutting down"})
		case s.engine.Model() == nil:
			writeError(w, r, s.log, &Error{Kind: KindUnavailable, Detail: "no model loaded"})
		default:
			m := s.engine.Model()
			body := map[string]string{"status": "ready", "model": m.Name, "version": m.Version}
			if err := s.registry.Health(); err != nil {
				body["registry"] = err.Error()
			}
			writeJSON(w, http.StatusOK, body)
		}
	}
}
