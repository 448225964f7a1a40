package api

import (
	"fmt"
	"strings"
	"testing"
)

// Every row of domainErrors tells the client its own detail: a fixed detail as written (nothing of the error's
// message, which for an invalid version name is the caller's own input), a %v detail filled with the message.
func TestDomainErrorsGiveTheirDetailAsWritten(t *testing.T) {
	for _, d := range domainErrors {
		t.Run(d.err.Error(), func(t *testing.T) {
			err := fmt.Errorf("%w: the caller's %q", d.err, "../../etc")
			got := asError(err)
			if got.Kind != d.kind {
				t.Fatalf("got kind %v; want %v", got.Kind, d.kind)
			}
			want := d.detail
			if strings.Contains(d.detail, "%v") {
				want = strings.Replace(d.detail, "%v", err.Error(), 1)
			}
			if got.Detail != want {
				t.Fatalf("got detail %q; want %q", got.Detail, want)
			}
		})
	}
}
