package api

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/perceptron-dev/perceptron/internal/model"
)

// The model repository index: the Open Inference Protocol's repository extension as Triton answers it
// (POST /v2/repository/index), so the web page and any client can learn which models this server has, and, beyond
// Triton's name, version and state, the labels and input of each, which a client needs before it sends an image.
// It is public like the rest of /v2: it shows no more than the model metadata routes and the 404 of an unknown
// model already do.

// maxIndexBody bounds the index request's body; the real one is {"ready": true} or nothing.
const maxIndexBody = 1 << 10

// repoModel is one model of the index.
type repoModel struct {
	Name string `json:"name"`
	// Version is the version served; "" for a model that is not served.
	Version string `json:"version,omitempty"`
	// State is READY for a model that answers requests, UNAVAILABLE for one that has versions but none served.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Default marks the model that the routes naming none serve (DEFAULT_MODEL).
	Default bool         `json:"default,omitempty"`
	Labels  []string     `json:"labels,omitempty"`
	Input   *model.Input `json:"input,omitempty"`
}

// indexRequest is the body POST /v2/repository/index takes; every field is optional.
type indexRequest struct {
	// Ready, when true, leaves out the models that are not ready.
	Ready bool `json:"ready"`
}

// parseIndexRequest reads the index request: nothing, or a JSON object with the optional "ready" field.
func parseIndexRequest(body []byte) (indexRequest, error) {
	var req indexRequest
	if body = bytes.Trim(body, " \t\r\n"); len(body) == 0 {
		return req, nil
	}
	if body[0] != '{' {
		return req, errorf(KindInvalid, `malformed JSON: send an object such as {"ready": true}, or nothing`)
	}
	return req, decodeJSON(bytes.NewReader(body), &req, true)
}

func (s *Server) handleRepositoryIndex() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIndexBody))
		if err != nil {
			s.fail(w, r, bodyError(err))
			return
		}
		req, err := parseIndexRequest(body)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		index, err := s.repositoryIndex()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Ready {
			index = slices.DeleteFunc(index, func(m repoModel) bool { return m.State != "READY" })
		}
		writeJSON(w, http.StatusOK, index)
	}
}

// repositoryIndex lists the models by name: the default model as the engine serves it, and every other name of the
// registry with its active version, when the server serves more than the default model (Config.Models).
func (s *Server) repositoryIndex() ([]repoModel, error) {
	index := []repoModel{}
	def := s.engine.Model()
	if def != nil {
		index = append(index, ready(def.Info, true))
	}
	if s.registry == nil || s.cfg.Models == nil {
		return index, nil
	}
	list, err := s.registry.List()
	if err != nil {
		return nil, err
	}
	byName := map[string]*repoModel{}
	for _, e := range list {
		if def != nil && e.Name == def.Name {
			continue
		}
		m := byName[e.Name]
		if m == nil {
			m = &repoModel{Name: e.Name, State: "UNAVAILABLE", Reason: "no version of this model is active"}
			byName[e.Name] = m
		}
		if e.Active {
			*m = ready(e.Info, false)
		}
	}
	others := make([]repoModel, 0, len(byName))
	for _, m := range byName {
		if m.State != "READY" {
			// The registry lists only the versions that load: an active version missing from it is damaged.
			if v, err := s.registry.ActiveOf(m.Name); err == nil && v != "" {
				m.Reason = "its active version " + v + " does not load"
			}
		}
		others = append(others, *m)
	}
	// The default model first, then the others by name, so the list reads the same on every call.
	slices.SortFunc(others, func(a, b repoModel) int { return strings.Compare(a.Name, b.Name) })
	return append(index, others...), nil
}

// ready is the index entry of a served model.
func ready(info model.Info, isDefault bool) repoModel {
	in := info.Input
	return repoModel{Name: info.Name, Version: info.Version, State: "READY", Default: isDefault,
		Labels: info.Labels, Input: &in}
}
