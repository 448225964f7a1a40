package api

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/perceptron-dev/perceptron/internal/inference"
	"github.com/perceptron-dev/perceptron/internal/model"
)

// The /predict response is written by hand: it is the hot path, its shape is fixed, and writing it directly keeps
// the classes in label order and costs a fraction of reflection-based encoding.

// labelCache holds the serving model's labels JSON-quoted once. It keeps only the latest network (the one nearly
// every request uses); a request answered by another version quotes that one's labels afresh.
type labelCache struct{ latest atomic.Pointer[quotedLabels] }

// quotedLabels is a network's name, version and labels as JSON strings.
type quotedLabels struct {
	net           *model.Network
	name, version []byte
	labels        [][]byte
}

func (c *labelCache) quoted(net *model.Network) *quotedLabels {
	if q := c.latest.Load(); q != nil && q.net == net {
		return q
	}
	q := &quotedLabels{net: net, name: quote(net.Name), version: quote(net.Version), labels: make([][]byte, len(net.Labels))}
	for i, l := range net.Labels {
		q.labels[i] = quote(l)
	}
	c.latest.Store(q)
	return q
}

func quote(s string) []byte {
	q, _ := json.Marshal(s)
	return q
}

// fewClasses is the most classes an answer orders and formats without an allocation (a digit classifier has ten).
const fewClasses = 16

// appendPredictResponse writes {"model": ..., "min_confidence": ..., "predictions": [...]} for res. A row marked in
// noDigit is answered without a label; any other is accepted or not by its confidence against minConfidence. With
// debug rows (size values each), each prediction also carries the input the model saw.
func appendPredictResponse(b []byte, q *quotedLabels, res inference.Result, noDigit []bool, minConfidence float64, topK int, debug []float32, size int) []byte {
	labels := q.labels
	classes := len(labels)
	topK = min(topK, classes)
	n := len(res.Probs) / classes

	b = append(b, `{"model":{"name":`...)
	b = append(b, q.name...)
	b = append(b, `,"version":`...)
	b = append(b, q.version...)
	b = append(b, `},"min_confidence":`...)
	b = strconv.AppendFloat(b, minConfidence, 'g', -1, 64)
	b = append(b, `,"predictions":[`...)
	var orderBuf [fewClasses]int // a digit classifier's classes, without an allocation
	order := orderBuf[:0]
	if classes > len(orderBuf) {
		order = make([]int, classes)
	}
	order = order[:classes]
	// Each probability is formatted once and copied where it appears again (the confidence and the top list).
	var numBuf [fewClasses * 16]byte // room for the numbers of a few classes; with more, each is formatted where it appears
	var numEnd [fewClasses + 1]int
	for i := range n {
		probs := res.Probs[i*classes : (i+1)*classes]
		var nums []byte
		if classes < len(numEnd) {
			nums = numBuf[:0]
			for j, p := range probs {
				nums = appendFloat(nums, p)
				numEnd[j+1] = len(nums)
			}
		}
		num := func(b []byte, j int) []byte {
			if nums == nil {
				return appendFloat(b, probs[j])
			}
			return append(b, nums[numEnd[j]:numEnd[j+1]]...)
		}
		sortByProbability(order, probs)
		best := order[0]
		if i > 0 {
			b = append(b, ',')
		}
		verdict := outcome(hasNoDigit(noDigit, i), unlikeDigits(res, i), probs[best], minConfidence)
		if verdict == OutcomeNoDigit {
			b = append(b, `{"label":null,"index":null,"accepted":false,"reason":"`+OutcomeNoDigit+`"`...)
			b = appendDebugInput(b, debug, i, size)
			b = append(b, '}')
			continue
		}
		b = append(b, `{"label":`...)
		b = append(b, labels[best]...)
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, int64(best), 10)
		b = append(b, `,"confidence":`...)
		b = num(b, best)
		if verdict == OutcomeAccepted {
			b = append(b, `,"accepted":true`...)
		} else {
			b = append(b, `,"accepted":false,"reason":"`...)
			b = append(b, verdict...)
			b = append(b, '"')
		}
		b = append(b, `,"probabilities":{`...)
		for j := range probs {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[j]...)
			b = append(b, ':')
			b = num(b, j)
		}
		b = append(b, `},"top":[`...)
		for t, j := range order[:topK] {
			if t > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"label":`...)
			b = append(b, labels[j]...)
			b = append(b, `,"probability":`...)
			b = num(b, j)
			b = append(b, '}')
		}
		b = append(b, ']')
		b = appendDebugInput(b, debug, i, size)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// sortByProbability sets order to the classes 0..len(order)-1 from the most probable to the least, the lower index
// first among equals (a stable sort by cmp.Compare). A digit classifier's few classes are sorted by insertion, without
// the comparison function a general sort calls for every comparison.
func sortByProbability(order []int, probs []float32) {
	for j := range order {
		order[j] = j
	}
	if len(order) > fewClasses {
		slices.SortStableFunc(order, func(a, c int) int { return cmp.Compare(probs[c], probs[a]) })
		return
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && cmp.Less(probs[order[j-1]], probs[order[j]]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
}

// appendDebugInput writes ,"input":[...] with row i of debug, when there are debug rows.
func appendDebugInput(b []byte, debug []float32, i, size int) []byte {
	if debug == nil {
		return b
	}
	b = append(b, `,"input":[`...)
	for j, v := range debug[i*size : (i+1)*size] {
		if j > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(v), 'f', 3, 32)
	}
	return append(b, ']')
}
