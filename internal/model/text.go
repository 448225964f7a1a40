package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckText says what is wrong with s as a name or a class label, which are stored in model files and shown in
// lists and answers: it must be non-empty, at most maxBytes of printable UTF-8, without leading or trailing spaces.
// nil means it is fine.
func CheckText(s string, maxBytes int) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxBytes:
		return fmt.Errorf("is %d bytes long, more than %d", len(s), maxBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", strconv.QuoteToASCII(s))
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%q starts or ends with a space", s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%q contains the unprintable character %U", s, r)
		}
	}
	return nil
}
