package api

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
	"github.com/perceptron-dev/perceptron/internal/train"
)

// latencyBuckets resolve the sub-millisecond range where a single prediction lives, up to the 10 s timeout.
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// histogram options shared by every latency histogram: classic buckets for every scraper, and a native histogram
// (exponential buckets, growth factor 1.1) for Prometheus servers that negotiate it.
func latencyOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace: "perceptron", Name: name, Help: help, Buckets: latencyBuckets,
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 160, NativeHistogramMinResetDuration: time.Hour,
	}
}

// Metrics are the service's Prometheus metrics, registered on a registry the caller owns.
type Metrics struct {
	requestDuration *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	preprocess      prometheus.Histogram
	queueWait       prometheus.Histogram
	compute         prometheus.Histogram
	batchSize       *prometheus.HistogramVec
	dropped         prometheus.Counter
	classified      *prometheus.CounterVec
	answers         *prometheus.CounterVec
	rejections      *prometheus.CounterVec
	modelInfo       *prometheus.GaugeVec
	swaps           prometheus.Counter
	jobs            *prometheus.GaugeVec
	jobProgress     prometheus.Gauge
	jobLoss         prometheus.Gauge
	jobAccuracy     *prometheus.GaugeVec
	imports         *prometheus.CounterVec // ONNX imports by result (onnx.go)

	mu           sync.Mutex
	servingLabel [2]string // name and version currently exported by modelInfo
	answerModels sync.Map  // model names with their own series of answers; at most maxModelLabels of them
	answerCount  int       // entries in answerModels, under mu
	series       sync.Map  // model name -> *answerSeries, for the names in answerModels
}

// answerSeries are the predictions_total series of one model name and the images_classified_total series of its
// labels, resolved once: resolving a series from its label values hashes them and locks the vector, several times an
// answer otherwise.
type answerSeries struct {
	labels     []string // the labels the classified series were resolved for
	outcomes   [4]prometheus.Counter
	classified []atomic.Pointer[prometheus.Counter] // by class; each resolved at the class's first answer
	batchSize  prometheus.Observer                  // inference_batch_size of the model's name
}

// seriesOf returns the series of net's answers. A name past maxModelLabels counts under "other" and is resolved
// each time rather than kept, so the names kept stay bounded; a new version of a name with other labels replaces
// its entry.
func (m *Metrics) seriesOf(net *model.Network) *answerSeries {
	if v, ok := m.series.Load(net.Name); ok {
		if s := v.(*answerSeries); slices.Equal(s.labels, net.Labels) {
			return s
		}
	}
	name := m.modelLabel(net.Name)
	s := &answerSeries{labels: net.Labels, classified: make([]atomic.Pointer[prometheus.Counter], len(net.Labels))}
	for i, o := range [4]string{OutcomeAccepted, OutcomeLowConfidence, OutcomeNotDigit, OutcomeNoDigit} {
		s.outcomes[i] = m.answers.WithLabelValues(name, o)
	}
	if name == net.Name {
		s.batchSize = m.batchSize.WithLabelValues(net.Name)
		m.series.Store(net.Name, s)
	}
	return s
}

// classifiedAs returns the images_classified_total series of class i, creating it at its first use so that only the
// labels ever predicted are exported.
func (m *Metrics) classifiedAs(s *answerSeries, i int) prometheus.Counter {
	if c := s.classified[i].Load(); c != nil {
		return *c
	}
	label := "other"
	if len(s.labels) <= maxLabelValues {
		label = s.labels[i]
	}
	c := m.classified.WithLabelValues(label)
	s.classified[i].Store(&c)
	return c
}

// Rejection reasons, a fixed set so the label stays bounded. Each names what happened, so an alert on one (say
// overloaded) fires for that and nothing else.
const (
	RejectTooLarge          = "too_large"           // 413: body, part, image count or pixels over a limit
	RejectUnsupported       = "unsupported"         // 415: a media type or content encoding the server does not read
	RejectUndecodable       = "undecodable"         // 422: bytes that do not decode as an image
	RejectInvalid           = "invalid_request"     // 400 or 422: malformed or unusable request fields
	RejectMethod            = "method_not_allowed"  // 405
	RejectSlow              = "too_slow"            // 408: the client sent the request too slowly
	RejectOverloaded        = "overloaded"          // 503: the inference queue is full
	RejectMemory            = "memory_busy"         // 503: the memory budget has no room for the request now
	RejectShuttingDown      = "shutting_down"       // 503: the server is draining
	RejectNoModel           = "no_model"            // 503: no model is loaded
	RejectModelChanged      = "model_changed"       // 503: the model changed while the request was prepared
	RejectTrainingQueueFull = "training_queue_full" // 503: too many training jobs waiting
	RejectCancelled         = "cancelled"           // the client went away before the answer
	RejectUnavailable       = "unavailable"         // 503 for any other reason
	RejectTimeout           = "timeout"             // 504
	RejectUnauthorized      = "unauthorized"        // 401: missing, malformed or wrong admin token
	RejectAuthLimited       = "auth_limited"        // 429: too many failed admin attempts from one client
	RejectRateLimited       = "rate_limited"        // 429 for any other limit
)

// rejectReasons lists every reason, to export them at zero from the start.
var rejectReasons = []string{
	RejectTooLarge, RejectUnsupported, RejectUndecodable, RejectInvalid, RejectMethod, RejectSlow, RejectOverloaded,
	RejectShuttingDown, RejectNoModel, RejectModelChanged, RejectTrainingQueueFull, RejectCancelled, RejectUnavailable,
	RejectTimeout, RejectUnauthorized, RejectAuthLimited, RejectRateLimited, RejectMemory,
}

// NewMetrics creates the metrics and registers them, with the Go runtime and process collectors, on reg. Pass the
// result as the engine's Observer, then call RegisterEngine for the queue and worker gauges.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requestDuration: prometheus.NewHistogramVec(latencyOpts("http_request_duration_seconds",
			"Time to answer HTTP requests, by route pattern, method and status code."), []string{"route", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "perceptron", Name: "http_requests_in_flight",
			Help: "HTTP requests being answered."}),
		preprocess: prometheus.NewHistogram(latencyOpts("preprocess_duration_seconds",
			"Time to decode and preprocess one uploaded image.")),
		queueWait: prometheus.NewHistogram(latencyOpts("inference_queue_wait_seconds",
			"Time a prediction request waits in the inference queue before a worker takes it.")),
		compute: prometheus.NewHistogram(latencyOpts("inference_compute_duration_seconds",
			"Time one forward pass of a batch takes.")),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "perceptron", Name: "inference_batch_size",
			Help:    "Images per forward pass, by model name (a request reaches a batch only for a model the registry holds, so the names are bounded by its models).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}, []string{"model"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "perceptron", Name: "inference_dropped_total",
			Help: "Queued predictions dropped unrun because the client had gone."}),
		classified: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "perceptron", Name: "images_classified_total",
			Help: "Images given a label (accepted or not), by predicted label."}, []string{"label"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "perceptron", Name: "predictions_total",
			Help: "Answers given, one per image, by model name and outcome: accepted, low_confidence (below the threshold), not_a_digit (unlike every class of the training data) or no_digit_found."},
			[]string{"model", "outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "perceptron", Name: "rejections_total",
			Help: "Requests refused, by reason."}, []string{"reason"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "perceptron", Name: "model_info",
			Help: "The model being served (value 1), by name and version."}, []string{"name", "version"}),
		swaps: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "perceptron", Name: "model_swaps_total",
			Help: "Times the served model was replaced."}),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "perceptron", Name: "training_jobs",
			Help: "Training jobs by status."}, []string{"status"}),
		jobProgress: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "perceptron", Name: "training_progress_ratio",
			Help: "Progress of the running training job, 0 to 1."}),
		jobLoss: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "perceptron", Name: "training_loss",
			Help: "Latest training loss of the running job."}),
		jobAccuracy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "perceptron", Name: "training_accuracy_ratio",
			Help: "Latest accuracy of the running job, on the training examples seen this epoch or the validation split."}, []string{"split"}),
	}
	for _, r := range rejectReasons {
		m.rejections.WithLabelValues(r) // export zeros, so rate() works from the first scrape
	}
	for _, s := range []string{train.StatusQueued, train.StatusRunning, train.StatusSucceeded, train.StatusFailed, train.StatusCancelled} {
		m.jobs.WithLabelValues(s)
	}
	reg.MustRegister(m.requestDuration, m.inFlight, m.preprocess, m.queueWait, m.compute, m.batchSize, m.dropped,
		m.classified, m.answers, m.rejections, m.modelInfo, m.swaps, m.jobs, m.jobProgress, m.jobLoss, m.jobAccuracy,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.imports = registerImports(reg)
	return m
}

// RegisterEngine adds the engine's queue depth and worker gauges to reg and exports its model.
func (m *Metrics) RegisterEngine(reg prometheus.Registerer, engine *inference.Engine) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "perceptron", Name: "inference_queue_depth",
			Help: "Images waiting in the inference queue."}, func() float64 { return float64(engine.Stats().QueuedImages) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "perceptron", Name: "inference_workers_busy",
			Help: "Inference workers computing a batch."}, func() float64 { return float64(engine.Stats().BusyWorkers) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "perceptron", Name: "inference_workers",
			Help: "Inference workers."}, func() float64 { return float64(engine.Stats().Workers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "perceptron", Name: "inference_direct_requests_total",
			Help: "Requests that found the inference engine idle and were computed on their own goroutine, without queueing."},
			func() float64 { return float64(engine.Stats().Direct) }),
	)
	m.SetModel(engine.Model())
}

// Batch implements inference.Observer.
func (m *Metrics) Batch(requests, images int, compute time.Duration) {
	m.compute.Observe(compute.Seconds())
}

// BatchOf implements inference.ModelObserver.
func (m *Metrics) BatchOf(net *model.Network, _, images int) {
	if v, ok := m.series.Load(net.Name); ok { // the series of a model that has answered, resolved once
		v.(*answerSeries).batchSize.Observe(float64(images))
		return
	}
	m.batchSize.WithLabelValues(net.Name).Observe(float64(images))
}

// Waited implements inference.Observer.
func (m *Metrics) Waited(d time.Duration) { m.queueWait.Observe(d.Seconds()) }

// Dropped implements inference.Observer.
func (m *Metrics) Dropped() { m.dropped.Inc() }

// SetModel exports net as the served model.
func (m *Metrics) SetModel(net *model.Network) {
	if net == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.servingLabel[1] != "" {
		m.modelInfo.DeleteLabelValues(m.servingLabel[0], m.servingLabel[1])
	}
	m.servingLabel = [2]string{net.Name, net.Version}
	m.modelInfo.WithLabelValues(net.Name, net.Version).Set(1)
	m.batchSize.WithLabelValues(net.Name) // exported from the start, so rate() works from the first scrape
}

// Swapped records a model swap.
func (m *Metrics) Swapped(net *model.Network) {
	m.swaps.Inc()
	m.SetModel(net)
}

// Jobs exports the counts of jobs by status and the progress of the running one.
func (m *Metrics) Jobs(all []train.Job) {
	counts := map[string]int{}
	for _, j := range all {
		counts[j.Status]++
		if j.Status == train.StatusRunning {
			m.jobProgress.Set(j.Progress.Fraction)
			m.jobLoss.Set(j.Progress.Loss)
			m.jobAccuracy.WithLabelValues("train").Set(j.Progress.TrainAccuracy)
			m.jobAccuracy.WithLabelValues("validation").Set(j.Progress.ValAccuracy)
		}
	}
	for _, s := range []string{train.StatusQueued, train.StatusRunning, train.StatusSucceeded, train.StatusFailed, train.StatusCancelled} {
		m.jobs.WithLabelValues(s).Set(float64(counts[s]))
	}
}

func (m *Metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.requestDuration.WithLabelValues(route, methodLabel(method), strconv.Itoa(code)).Observe(d.Seconds())
}

// methodLabel is the method for labels, logs and messages: any method outside RFC 9110's set (clients may send any
// token, PROPFIND or a random one per request) is "other", so it cannot grow the metric's series without bound.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// maxLabelValues bounds the label values of images_classified_total: a model with more classes counts them all
// under "other", so a model file cannot blow up the metric's cardinality.
const maxLabelValues = 64

// maxModelLabels bounds the model names of predictions_total; answers of further models count under "other".
const maxModelLabels = 32

// modelLabel returns the model label of predictions_total for a model name.
func (m *Metrics) modelLabel(name string) string {
	if _, ok := m.answerModels.Load(name); ok {
		return name
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.answerModels.Load(name); ok {
		return name
	}
	if m.answerCount >= maxModelLabels {
		return "other"
	}
	m.answerModels.Store(name, true)
	m.answerCount++
	return name
}

// countAnswers counts each image of a result by its outcome, and each one that got a label under that label.
func (m *Metrics) countAnswers(res inference.Result, noDigit []bool, minConfidence float64) {
	classes := len(res.Model.Labels)
	series := m.seriesOf(res.Model)
	var counts [4]float64 // accepted, low confidence, not a digit, no digit
	for i := 0; (i+1)*classes <= len(res.Probs); i++ {
		probs := res.Probs[i*classes : (i+1)*classes]
		best := model.Argmax(probs)
		switch outcome(hasNoDigit(noDigit, i), unlikeDigits(res, i), probs[best], minConfidence) {
		case OutcomeNoDigit:
			counts[3]++
			continue
		case OutcomeNotDigit:
			counts[2]++
		case OutcomeLowConfidence:
			counts[1]++
		default:
			counts[0]++
		}
		m.classifiedAs(series, best).Inc()
	}
	// Every outcome is touched, so each series exists from the model's first answer and rate() works at once.
	for i, c := range series.outcomes {
		c.Add(counts[i])
	}
}

// LatencyOpts are the options of every latency histogram of the service, for the other transports' metrics.
func LatencyOpts(name, help string) prometheus.HistogramOpts { return latencyOpts(name, help) }

// CountAnswers counts the predicted labels and outcomes of res for the other transports (gRPC), as the REST routes
// count theirs: noDigit marks the rows without a digit (nil when none), minConfidence is the threshold that applied.
func (m *Metrics) CountAnswers(res inference.Result, noDigit []bool, minConfidence float64) {
	m.countAnswers(res, noDigit, minConfidence)
}
