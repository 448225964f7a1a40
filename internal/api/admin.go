package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/registry"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// maxTrainBody bounds a training request body; the real ones are a few hundred bytes.
const maxTrainBody = 64 << 10

func (s *Server) handleTrainSubmit() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := train.DefaultRequest()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTrainBody))
		if err != nil {
			s.fail(w, r, bodyError(err))
			return
		}
		// JSON's white space only: other Unicode spaces are not JSON and must not make a body count as empty.
		if body = bytes.Trim(body, " \t\r\n"); len(body) > 0 {
			// Every field is optional: an empty body or {} is the default job. Anything but an object is refused.
			if body[0] != '{' {
				s.fail(w, r, errorf(KindInvalid, "malformed JSON: send an object of training fields, or {} for the defaults"))
				return
			}
			if err := decodeJSON(bytes.NewReader(body), &req, true); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if err := req.Validate(); err != nil {
			s.fail(w, r, err)
			return
		}
		if !s.datasetExists(req.Dataset) {
			s.fail(w, r, errorf(KindUnprocessable, "unknown data set "+strconv.Quote(req.Dataset)+": use mnist or the id of an uploaded data set (GET /datasets)"))
			return
		}
		if err := s.checkTrainMemory(req); err != nil {
			s.fail(w, r, err)
			return
		}
		job, err := s.jobs.Submit(req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Info("training job submitted", zap.String("job", job.ID), zap.String("dataset", req.Dataset),
			zap.Ints("hidden", req.Hidden), zap.String("optimizer", req.Optimizer), zap.Int("epochs", req.Epochs))
		w.Header().Set("Location", "/train/"+job.ID)
		writeJSON(w, http.StatusAccepted, job)
	}
}

func (s *Server) handleTrainList() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"jobs": s.jobs.List()})
	}
}

func (s *Server) handleTrainGet() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		job, err := s.jobs.Get(urlParam(r, "id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, job)
	}
}

func (s *Server) handleTrainCancel() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		job, err := s.jobs.Cancel(urlParam(r, "id"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Info("training job cancelled", zap.String("job", job.ID))
		writeJSON(w, http.StatusAccepted, job)
	}
}

func (s *Server) handleModelsList() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := s.registry.List()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		serving := ""
		if m := s.engine.Model(); m != nil {
			serving = m.Version
		}
		writeJSON(w, http.StatusOK, map[string]any{"serving": serving, "models": list})
	}
}

// handleNamedModelList lists the versions of one named model, newest first, with its active version.
func (s *Server) handleNamedModelList() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := urlParam(r, "name")
		list, err := s.registry.ListOf(name)
		if err != nil {
			s.fail(w, r, s.unknownModel(err))
			return
		}
		active := ""
		for _, e := range list {
			if e.Active {
				active = e.Version
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "active": active, "versions": list})
	}
}

// unknownModel maps a registry error about a model name to 404 listing the names there are.
func (s *Server) unknownModel(err error) error {
	if !errors.Is(err, registry.ErrNotFound) && !errors.Is(err, registry.ErrInvalid) {
		return err
	}
	names, _ := s.registry.Names()
	return &Error{Kind: KindNotFound, Detail: "no such model; the models are " + strings.Join(names, ", "), Err: err}
}

// versionOf returns the version a route addresses, checking that it belongs to the model the route names, if any:
// /models/{name}/versions/{version} addresses a version of that model, /models/{version} any version.
func (s *Server) versionOf(r *http.Request) (registry.Entry, error) {
	e, err := s.registry.Get(urlParam(r, "version"))
	if err != nil {
		return e, err
	}
	if name := urlParam(r, "name"); name != "" && e.Name != name {
		if _, err := s.registry.ListOf(name); err != nil {
			return e, s.unknownModel(err)
		}
		return e, &Error{Kind: KindNotFound, Detail: "no such version of model " + strconv.Quote(name)}
	}
	return e, nil
}

func (s *Server) handleModelGet() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, err := s.versionOf(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, e)
	}
}

func (s *Server) handleModelActivate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		version := urlParam(r, "version")
		if s.cfg.GoLive == nil {
			s.fail(w, r, errorf(KindUnavailable, "this server cannot activate models"))
			return
		}
		if urlParam(r, "name") != "" {
			if _, err := s.versionOf(r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		net, err := s.cfg.GoLive(version)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// Described from the network just loaded: reading the folder again could race a change to it, and must not
		// turn a done activation into an error.
		writeJSON(w, http.StatusOK, s.registry.Describe(net))
	}
}

// datasetExists reports whether a training request's data set can be found.
func (s *Server) datasetExists(name string) bool {
	if name == dataset.MNISTName {
		return true
	}
	if s.datasets == nil {
		return false
	}
	_, err := s.datasets.Get(name)
	return err == nil
}
