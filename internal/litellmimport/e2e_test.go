package litellmimport_test

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/litellmimport"
	lt "github.com/keygate/keygate/internal/litellmimport/litellmtest"
)

// keygateAnswer is what /auth/verify answers for each of LiteLLM's
// verdicts: Keygate keeps forward-auth statuses (README "Forward auth").
var keygateAnswer = map[string]struct {
	status int
	typ    string
}{
	lt.Allowed:      {http.StatusOK, ""},
	lt.Expired:      {http.StatusUnauthorized, "expired_key"},
	lt.Blocked:      {http.StatusUnauthorized, "auth_error"},
	lt.Unknown:      {http.StatusUnauthorized, "auth_error"},
	lt.RouteDenied:  {http.StatusForbidden, "auth_error"},
	lt.ModelDenied:  {http.StatusForbidden, "auth_error"},
	lt.BudgetDenied: {http.StatusTooManyRequests, "budget_exceeded"},
}

// TestImportedKeysAnswerAsLiteLLM is the promise of the import: after it,
// every credential is allowed exactly what LiteLLM allowed it. For every
// key of the fixture (litellmtest.Keys, which states LiteLLM's verdict and
// the rule behind it), /auth/verify of a real Keygate on the imported data
// must give the same verdict, on both target databases.
func TestImportedKeysAnswerAsLiteLLM(t *testing.T) {
	from := lt.NewSource(t)
	for name, st := range targets(t) {
		t.Run(name, func(t *testing.T) {
			_, err := litellmimport.Import(t.Context(), from, st, litellmimport.Options{})
			require.NoError(t, err)
			a, err := app.New(t.Context(), app.Options{Store: st, Logger: quiet(), MasterKeyHash: sha256.Sum256([]byte("sk-master-e2e"))})
			require.NoError(t, err)
			h := a.Handler()
			for _, k := range lt.Keys() {
				body := "{}"
				if k.Model != "" {
					body = `{"model":"` + k.Model + `"}`
				}
				req := httptest.NewRequest(http.MethodPost, "/auth/verify"+k.Route, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+k.Raw)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				want := keygateAnswer[k.LiteLLM]
				if !assert.Equal(t, want.status, rec.Code, "%s (LiteLLM: %s, because %s): %s", k.Name, k.LiteLLM, k.Why, rec.Body.String()) {
					continue
				}
				if want.typ != "" {
					var e struct {
						Error struct{ Type string } `json:"error"`
					}
					require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), k.Name)
					require.Equal(t, want.typ, e.Error.Type, k.Name)
				}
			}

			// Identity as LiteLLM would attribute it.
			ask := func(raw string) http.Header {
				req := httptest.NewRequest(http.MethodPost, "/auth/verify/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
				req.Header.Set("Authorization", "Bearer "+raw)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				return rec.Header()
			}
			// 8. A personal key acts for no team, even for a member of a
			// (blocked) team.
			hd := ask(lt.KeyDave)
			require.Equal(t, "dave", hd.Get("X-Keygate-User-Id"))
			require.Empty(t, hd.Get("X-Keygate-Team-Id"))
			require.Equal(t, "team-a", ask(lt.KeyAlice).Get("X-Keygate-Team-Id"))
			// 7. Unknown and legacy roles act as internal_user, as in LiteLLM.
			for _, raw := range []string{lt.KeyAppOwner, lt.KeyRoleNull, lt.KeyOrgAdmin} {
				require.Equal(t, "internal_user", ask(raw).Get("X-Keygate-User-Role"))
			}
		})
	}
}
