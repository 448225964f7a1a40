package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzRepositoryIndexRequest holds the index's request parser to its contract: whatever the bytes, it answers the
// index or a 400 with the protocol's {"error"}, and it accepts exactly the bodies that are nothing or an object
// whose one field, if any, is the boolean "ready".
func FuzzRepositoryIndexRequest(f *testing.F) {
	srv, _ := newTestServer(f, Config{})
	h := srv.Config.Handler
	for _, seed := range []string{"", "{}", `{"ready": true}`, `{"ready": false}`, "[]", `{"ready": 1}`, `{"ready": true} x`,
		`{"ready": true, "ready": false}`, "\xff", `{"ready":`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, h, "POST", "/v2/repository/index", "application/json", body)
		req, err := parseIndexRequest(body)
		var obj map[string]json.RawMessage
		strict := json.Unmarshal(body, &obj) == nil && obj != nil
		for k, v := range obj {
			var b bool
			if !strings.EqualFold(k, "ready") || json.Unmarshal(v, &b) != nil { // field names match as encoding/json matches them
				strict = false
			}
		}
		if err != nil && strict {
			t.Fatalf("refused %q: %v", body, err)
		}
		if err == nil && len(trimJSONSpace(body)) > 0 && !strict {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}

func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}
