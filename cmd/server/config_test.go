package main

import (
	"io"
	"net/netip"
	"slices"
	"testing"
)

func TestTrustedProxiesAreReadAsPrefixes(t *testing.T) {
	for _, tt := range []struct {
		name, env, want string
	}{
		{"unset trusts none", "", ""},
		{"prefixes and bare addresses", "10.0.0.0/8, 192.0.2.7,2001:db8::/32", "10.0.0.0/8,192.0.2.7/32,2001:db8::/32"},
		{"host bits are masked off", "10.1.2.3/8", "10.0.0.0/8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(nil, func(k string) string {
				if k == "TRUSTED_PROXIES" {
					return tt.env
				}
				return ""
			}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.printable()["TRUSTED_PROXIES"]; got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "10.0.0.0/8;10.1.0.0/16"} {
		if _, err := parseConfig(nil, func(k string) string {
			if k == "TRUSTED_PROXIES" {
				return bad
			}
			return ""
		}, io.Discard); err == nil {
			t.Errorf("TRUSTED_PROXIES=%q accepted; want an error", bad)
		}
	}
}

// FuzzTrustedProxies checks the TRUSTED_PROXIES reader: it never panics, and what it accepts prints in a form it
// reads back to the same prefixes.
func FuzzTrustedProxies(f *testing.F) {
	f.Add("10.0.0.0/8, 192.0.2.7,2001:db8::/32")
	f.Add("::ffff:10.0.0.1")
	f.Add(",, 10.0.0.0/33")
	f.Fuzz(func(t *testing.T, s string) {
		var a, b []netip.Prefix
		if prefixesVal(&a).Set(s) != nil {
			return
		}
		printed := prefixesVal(&a).String()
		if err := prefixesVal(&b).Set(printed); err != nil {
			t.Fatalf("%q read as %q, which does not read back: %v", s, printed, err)
		}
		if !slices.Equal(a, b) {
			t.Fatalf("%q read as %v, printed %q, read back as %v", s, a, printed, b)
		}
	})
}
