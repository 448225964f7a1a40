package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	apispec "github.com/perceptron-dev/perceptron/api"
	"github.com/perceptron-dev/perceptron/internal/web"
)

// routes is the whole HTTP surface in one place; api/openapi.yaml documents each route. With a separate admin
// listener (Config.SeparateAdmin) the public router leaves the admin routes out and AdminHandler serves them, with
// the health and metrics routes, on their own address.
func (s *Server) routes() http.Handler { return s.router(true, !s.cfg.SeparateAdmin) }

// AdminHandler serves the admin routes, health and metrics alone, for the separate admin listener (ADMIN_ADDR).
func (s *Server) AdminHandler() http.Handler { return s.router(false, true) }

func (s *Server) router(public, admin bool) http.Handler {
	r := chi.NewRouter()
	r.Use(withRequestID, withAccessLog(s.log), s.withMetrics, withRecover(s.log), withDrainClose(s.Draining),
		withChunkedClose, middleware.GetHead)
	// Routes that read a body refuse one declared over their limit, and encoded ones, once they have matched (and,
	// for admin routes, authenticated).
	maxBody := func() int64 { return s.cfg.MaxBodyBytes }
	body := r.With(s.withDeclaredLength(maxBody), s.withIdentityEncoding)
	notFound := func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errorf(KindNotFound, "no such route"))
	}
	r.NotFound(notFound)
	methodNotAllowed := func(w http.ResponseWriter, req *http.Request) {
		path := req.URL.RawPath
		if path == "" {
			path = req.URL.Path
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			// The /v2 mount matches /v2 itself for every method; of them only GET /v2 has a route.
			if path == "/v2" && m != http.MethodGet {
				continue
			}
			if r.Match(chi.NewRouteContext(), m, path) {
				allow = append(allow, m)
				if m == http.MethodGet {
					allow = append(allow, http.MethodHead) // middleware.GetHead answers HEAD from GET
				}
			}
		}
		if len(allow) == 0 {
			// chi calls this for any method it does not know (PROPFIND, FOO), whether or not the path exists.
			notFound(w, req)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		detail := "method " + methodLabel(req.Method) + " is not allowed here; use " + strings.Join(allow, " or ")
		s.fail(w, req, errorf(KindMethod, detail))
	}
	r.MethodNotAllowed(methodNotAllowed)

	r.Get("/healthz", s.handleHealthz())
	r.Get("/readyz", s.handleReadyz())
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))

	if public {
		r.Method(http.MethodGet, "/", web.Handler())
		r.Get("/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			w.Write(apispec.YAML)
		})
		body.Post("/predict", s.handlePredict())

		// The Open Inference Protocol: every error under /v2, a missing route's included, is {"error": "..."}.
		r.Route("/v2", func(v chi.Router) {
			v.Use(withV2Errors)
			// chi hands /v2 itself to this mount for the methods the route below does not take, and the mount has no
			// route for it: answer those as the route's own missing methods, not as a missing route.
			v.NotFound(func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path == "/v2" {
					methodNotAllowed(w, req)
					return
				}
				notFound(w, req)
			})
			body := v.With(s.withDeclaredLength(maxBody), s.withIdentityEncoding)
			v.Get("/health/live", s.handleV2Live())
			v.Get("/health/ready", s.handleV2Ready())
			v.Get("/models/{name}", s.handleV2ModelMetadata())
			v.Get("/models/{name}/ready", s.handleV2ModelReady())
			body.Post("/models/{name}/infer", s.handleV2Infer())
			v.Get("/models/{name}/versions/{version}", s.handleV2ModelMetadata())
			v.Get("/models/{name}/versions/{version}/ready", s.handleV2ModelReady())
			body.Post("/models/{name}/versions/{version}/infer", s.handleV2Infer())
			body.Post("/repository/index", s.handleRepositoryIndex())
		})
		// After the mount, which would take /v2 too. HEAD is named here because middleware.GetHead finds the mount
		// for HEAD /v2 and leaves the method as it is; /v2/ stays unknown, as the protocol names no such route.
		v2 := r.With(withV2Errors)
		v2.Get("/v2", s.handleV2ServerMetadata())
		v2.Head("/v2", s.handleV2ServerMetadata())
	}

	if !admin {
		return s.withFloor(r)
	}
	r.Group(func(r chi.Router) {
		r.Use(s.withAdmin)
		r.With(s.withDeclaredLength(func() int64 { return maxTrainBody }), s.withIdentityEncoding).Post("/train", s.handleTrainSubmit())
		r.Get("/train", s.handleTrainList())
		r.Get("/train/{id}", s.handleTrainGet())
		r.Delete("/train/{id}", s.handleTrainCancel())
		r.Get("/models", s.handleModelsList())
		r.Get("/models/{version}", s.handleModelGet())
		r.With(s.withIdentityEncoding).Post("/models", s.handleModelImport())
		r.Get("/models/{version}/onnx", s.handleModelExport())
		r.Post("/models/{version}/activate", s.handleModelActivate())
		r.Get("/models/{name}/versions", s.handleNamedModelList())
		r.Get("/models/{name}/versions/{version}", s.handleModelGet())
		r.Post("/models/{name}/versions/{version}/activate", s.handleModelActivate())
		r.With(s.withDeclaredLength(s.datasetBodyLimit), s.withIdentityEncoding).Post("/datasets", s.handleDatasetUpload())
		r.Get("/datasets", s.handleDatasetList())
		r.Get("/datasets/{id}", s.handleDatasetGet())
	})

	if !public {
		return r
	}
	return s.withFloor(r)
}

// urlParam is the path parameter key of the matched route, percent-decoded once: /models/v%2D1 is /models/v-1
// (RFC 3986 makes them the same). chi matches the escaped path (URL.RawPath) when the request had escapes that
// decoding would lose, and then its parameters are still escaped; otherwise it matches URL.Path, already decoded,
// and decoding again would turn a client's %252F into a slash. Undecodable escapes stay as they are and match
// nothing.
func urlParam(r *http.Request, key string) string {
	v := chi.URLParam(r, key)
	if r.URL.RawPath == "" {
		return v
	}
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

// withIdentityEncoding refuses bodies with a Content-Encoding (gzip, br, ...): the server reads bodies as they are,
// and a compressed image or JSON read as plain bytes would fail later with a misleading error, or worse, a body
// labelled compressed that is not would be accepted. RFC 9110 section 15.5.16 answers 415 with Accept-Encoding.
// A request without a body has nothing encoded, whatever its headers say.
func (s *Server) withIdentityEncoding(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		for _, ce := range r.Header.Values("Content-Encoding") {
			for _, c := range strings.Split(ce, ",") {
				if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
					w.Header().Set("Accept-Encoding", "identity")
					detail := "Content-Encoding " + strconv.Quote(truncate(c, 32)) + " is not supported; send the body uncompressed"
					s.fail(w, r, errorf(KindUnsupported, detail))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// truncate shortens s to at most n bytes for messages and logs, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// withFloor adds the benchmark floor route when asked for.
func (s *Server) withFloor(r chi.Router) http.Handler {
	if s.cfg.BenchFloor {
		r.Post("/bench/floor", s.handleFloor())
	}
	return r
}
