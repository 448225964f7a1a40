package api

import (
	"fmt"
	"io"
	"mime"
	"net/http"

	"go.uber.org/zap"

	"github.com/perceptron-dev/perceptron/internal/dataset"
	"github.com/perceptron-dev/perceptron/internal/membudget"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/uploads"
)

// archiveTypes are the Content-Types accepted as a raw archive body.
var archiveTypes = map[string]bool{
	"application/zip": true, "application/gzip": true, "application/x-gzip": true, "application/x-tar": true,
	"application/x-compressed-tar": true, "application/octet-stream": true,
}

// datasetBodyLimit is the largest data set upload: the archive plus multipart framing and fields.
func (s *Server) datasetBodyLimit() int64 { return s.datasets.Limits().MaxArchiveBytes + 1<<20 }

// handleDatasetUpload imports a labelled data set: multipart/form-data with an "archive" part (.zip or .tar.gz of
// class folders) or "images" and "labels" parts (an IDX pair), plus optional "name", "preprocess" and "channels"
// fields; or the archive as the raw body with name, preprocess and channels in the query.
func (s *Server) handleDatasetUpload() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := s.datasetBodyLimit()
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			s.fail(w, r, errorf(KindUnsupported, "send multipart/form-data with an archive part, or an archive body (application/zip, application/gzip)"))
			return
		}
		hold := s.memory.Hold() // the upload, held until it is imported
		defer hold.Release()
		parts := map[string][]byte{}
		opts := uploads.ImportOptions{Name: r.URL.Query().Get("name"), Preprocess: model.Preprocessing(r.URL.Query().Get("preprocess"))}
		channels, hasChannels := r.URL.Query().Get("channels"), r.URL.Query().Has("channels")
		switch {
		case mt == "multipart/form-data":
			if err := readParts(r, parts, hold, limit, map[string]bool{"archive": true, "images": true, "labels": true, "name": true, "preprocess": true, "channels": true}); err != nil {
				s.fail(w, r, err)
				return
			}
			if v, ok := parts["name"]; ok {
				opts.Name = string(v)
			}
			if v, ok := parts["preprocess"]; ok {
				opts.Preprocess = model.Preprocessing(v)
			}
			if v, ok := parts["channels"]; ok {
				channels, hasChannels = string(v), true
			}
		case archiveTypes[mt]:
			data, err := readBody(r.Body, r.ContentLength, limit, hold)
			if err != nil {
				s.fail(w, r, bodyError(err))
				return
			}
			parts["archive"] = data
		default:
			s.fail(w, r, errorf(KindUnsupported, fmt.Sprintf("unsupported Content-Type %q: send multipart/form-data or an archive body", mt)))
			return
		}
		switch opts.Preprocess {
		case "", model.PreprocessMNIST, model.PreprocessResize:
		default:
			s.fail(w, r, errorf(KindUnprocessable, fmt.Sprintf("preprocess %q: want mnist or resize", opts.Preprocess)))
			return
		}
		if hasChannels {
			switch channels {
			case "1", "3":
				opts.Channels = int(channels[0] - '0')
			case "", "auto":
			default:
				s.fail(w, r, errorf(KindInvalid, fmt.Sprintf("channels %q: want 1 (gray), 3 (colour) or auto", truncate(channels, 32))))
				return
			}
		}
		var info uploads.Info
		switch {
		case parts["archive"] != nil && parts["images"] == nil && parts["labels"] == nil:
			info, err = s.datasets.Import(r.Context(), parts["archive"], opts)
		case parts["archive"] == nil && parts["images"] != nil && parts["labels"] != nil:
			info, err = s.datasets.ImportIDX(r.Context(), parts["images"], parts["labels"], opts)
		default:
			err = errorf(KindInvalid, `send either an "archive" part, or an "images" and a "labels" part (IDX files)`)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Info("data set imported", zap.String("id", info.ID), zap.Int("examples", info.Examples),
			zap.Int("classes", len(info.Classes)), zap.String("source", info.Source))
		w.Header().Set("Location", "/datasets/"+info.ID)
		writeJSON(w, http.StatusCreated, info)
	}
}

// readParts reads the multipart parts named in allowed into parts. Unknown or repeated parts are refused.
func readParts(r *http.Request, parts map[string][]byte, hold *membudget.Hold, limit int64, allowed map[string]bool) error {
	body := &readRecorder{r: r.Body}
	r.Body = io.NopCloser(body) // net/http closes the body it made itself
	mr, err := r.MultipartReader()
	if err != nil {
		return errorf(KindInvalid, "malformed multipart body")
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nextPartError(err, body.err)
		}
		name := p.FormName()
		if !allowed[name] {
			return errorf(KindInvalid, fmt.Sprintf("unexpected part %q", name))
		}
		if _, dup := parts[name]; dup {
			return errorf(KindInvalid, fmt.Sprintf("part %q appears twice", name))
		}
		data, err := readBody(p, -1, limit, hold)
		if err != nil {
			return bodyError(err)
		}
		parts[name] = data
	}
}

func (s *Server) handleDatasetList() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := s.datasets.List()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"datasets": append([]uploads.Info{uploads.MNISTInfo()}, list...)})
	}
}

func (s *Server) handleDatasetGet() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := urlParam(r, "id")
		if id == dataset.MNISTName {
			writeJSON(w, http.StatusOK, uploads.MNISTInfo())
			return
		}
		info, err := s.datasets.Get(id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	}
}
