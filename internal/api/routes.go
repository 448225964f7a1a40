package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
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
	r.Use(withRequestID, withAccessLog(s.log), s.withMetrics, withRecover(s.log), withDrainClose(s.Draining))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errorf(KindNotFound, "no such route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			if r.Match(chi.NewRouteContext(), m, req.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(w, req, errorf(KindMethod, "method "+req.Method+" is not allowed here; use "+strings.Join(allow, " or ")))
	})

	r.Get("/healthz", s.handleHealthz())
	r.Get("/readyz", s.handleReadyz())
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))

	if public {
		r.Method(http.MethodGet, "/", web.Handler())
		r.Get("/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			w.Write(apispec.YAML)
		})
		r.Post("/predict", s.handlePredict())

		r.Get("/v2/health/live", s.handleV2Live())
		r.Get("/v2/health/ready", s.handleV2Ready())
		r.Get("/v2/models/{name}", s.handleV2ModelMetadata())
		r.Get("/v2/models/{name}/ready", s.handleV2ModelReady())
		r.Post("/v2/models/{name}/infer", s.handleV2Infer())
	}

	if !admin {
		return s.withFloor(r)
	}
	r.Group(func(r chi.Router) {
		r.Use(s.withAdmin)
		r.Post("/train", s.handleTrainSubmit())
		r.Get("/train", s.handleTrainList())
		r.Get("/train/{id}", s.handleTrainGet())
		r.Delete("/train/{id}", s.handleTrainCancel())
		r.Get("/models", s.handleModelsList())
		r.Get("/models/{version}", s.handleModelGet())
		r.Post("/models/{version}/activate", s.handleModelActivate())
		r.Post("/datasets", s.handleDatasetUpload())
		r.Get("/datasets", s.handleDatasetList())
		r.Get("/datasets/{id}", s.handleDatasetGet())
	})

	if !public {
		return r
	}
	return s.withFloor(r)
}

// withFloor adds the benchmark floor route when asked for.
func (s *Server) withFloor(r chi.Router) http.Handler {
	if s.cfg.BenchFloor {
		r.Post("/bench/floor", s.handleFloor())
	}
	return r
}
