package api

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/httperr"
)

// The verify path indexes the header map with these names instead of
// calling Header.Get, which is only the same when they are canonical.
func TestVerifyHeaderNamesAreCanonical(t *testing.T) {
	names := append(append(append([]string{}, routeHeaders...), methodHeaders...), auth.CredentialHeaders()...)
	names = append(names, httperr.RequestIDHeader)
	for _, n := range names {
		if c := http.CanonicalHeaderKey(n); c != n {
			t.Errorf("%q is not canonical (%q)", n, c)
		}
	}
}
