package main

import (
	"io"
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
