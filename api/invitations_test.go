package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/rbac"
)

func invitationID(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	require.NoError(t, err)
	require.Equal(t, "/ui/onboarding", u.Path)
	return u.Query().Get("id")
}

// TestSeedFlow is the self-serve story through HTTP only: the admin adds a
// user and invites them; the user claims the link, logs in with e-mail and
// password, and manages a key with the session. A viewer invited the same
// way cannot create keys.
func TestSeedFlow(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "nina@example.com", "user_role": "internal_user", "auto_create_key": false})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		uid := r.JSON(t)["user_id"].(string)

		created := e.now.Now()
		r = e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": uid})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		inv := r.JSON(t)
		link := inv["invitation_link"].(string)
		require.True(t, strings.HasPrefix(link, testIssuer+"/ui/onboarding?id="), "links use the configured base, not the Host header: %s", link)
		id := invitationID(t, link)
		require.Equal(t, id, inv["id"])
		require.Len(t, id, 36)
		require.Equal(t, false, inv["is_accepted"])
		exp, err := time.Parse(time.RFC3339Nano, inv["expires_at"].(string))
		require.NoError(t, err)
		require.WithinDuration(t, created.Add(7*24*time.Hour), exp, time.Second)
		_, err = e.store.GetInvitation(t.Context(), id)
		require.Error(t, err, "the raw id is never stored; only its hash is")

		// the link's data, as the onboarding page fetches it; nothing consumed
		for i := 0; i < 2; i++ {
			r = e.do(http.MethodGet, "/onboarding/get_token?invite_link="+id, "", nil)
			require.Equal(t, http.StatusOK, r.Code, r.Body.String())
			require.Equal(t, "nina@example.com", r.JSON(t)["user_email"])
		}
		// claim: set the password; answer carries a session
		r = e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": id, "user_id": uid, "password": "nina's new password"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.NotEmpty(t, r.JSON(t)["token"])
		// reuse is refused and changes nothing
		before := snapshot(t, e)
		requireError(t, e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": id, "password": "another password!"}), http.StatusUnauthorized)
		requireError(t, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+id, "", nil), http.StatusUnauthorized)
		require.Equal(t, before, snapshot(t, e))

		// login with e-mail and password; a key with the session
		lr, _ := e.login("nina@example.com", "nina's new password")
		require.Equal(t, http.StatusOK, lr.Code, lr.Body.String())
		tok := lr.JSON(t)["token"].(string)
		r = e.do(http.MethodPost, "/key/generate", tok, map[string]any{"key_alias": "nina-laptop"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		key := r.JSON(t)["key"].(string)
		r = e.do(http.MethodGet, "/key/list", tok, nil)
		require.EqualValues(t, 1, r.JSON(t)["total_count"])
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/auth/verify", key, nil).Code)
		require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/key/delete", tok, map[string]any{"keys": []string{key}}).Code)
		requireError(t, e.do(http.MethodGet, "/auth/verify", key, nil), http.StatusUnauthorized)
		r = e.do(http.MethodGet, "/invitation/list", masterKey, nil)
		require.Equal(t, "accepted", r.JSON(t)["invitations"].([]any)[0].(map[string]any)["status"])

		// a viewer onboarded the same way cannot create a key
		r = e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "vic@example.com", "user_role": "internal_user_viewer", "auto_create_key": false})
		vid := r.JSON(t)["user_id"].(string)
		r = e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": vid})
		vlink := r.JSON(t)["invitation_link"].(string)
		r = e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": invitationID(t, vlink), "password": "vic's password!"})
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		vtok := r.JSON(t)["token"].(string)
		requireError(t, e.do(http.MethodPost, "/key/generate", vtok, map[string]any{}), http.StatusForbidden)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/key/list", vtok, nil).Code)
	})
}

func TestInvitationRules(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		internal := e.userWithRole("ian", rbac.RoleInternalUser)
		viewer := e.userWithRole("ada", rbac.RoleProxyAdminViewer)
		e.userWithRole("new", rbac.RoleInternalUser)
		before := snapshot(t, e)
		for _, tok := range []string{internal, viewer} {
			requireError(t, e.do(http.MethodPost, "/invitation/new", tok, map[string]any{"user_id": "new"}), http.StatusForbidden)
		}
		requireError(t, e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "ghost"}), http.StatusNotFound)
		requireError(t, e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{}), http.StatusBadRequest)
		requireError(t, e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": 7}), http.StatusBadRequest)
		require.Equal(t, before, snapshot(t, e))

		// superseded: an older link stops working when a new one is made
		r := e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "new"})
		old := invitationID(t, r.JSON(t)["invitation_link"].(string))
		r = e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "new"})
		cur := invitationID(t, r.JSON(t)["invitation_link"].(string))
		m1 := requireError(t, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+old, "", nil), http.StatusUnauthorized)
		m2 := requireError(t, e.do(http.MethodGet, "/onboarding/get_token?invite_link=00000000-0000-4000-8000-000000000000", "", nil), http.StatusUnauthorized)
		m3 := requireError(t, e.do(http.MethodGet, "/onboarding/get_token", "", nil), http.StatusUnauthorized)
		require.Equal(t, m1["message"], m2["message"], "unknown and superseded links look the same")
		require.Equal(t, m1["message"], m3["message"])

		// info / update / delete / list (admin)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/invitation/info?invitation_id="+cur, viewer, nil).Code)
		requireError(t, e.do(http.MethodGet, "/invitation/info?invitation_id="+cur, internal, nil), http.StatusForbidden)
		requireError(t, e.do(http.MethodGet, "/invitation/info?invitation_id=nope", masterKey, nil), http.StatusNotFound)
		requireError(t, e.do(http.MethodPost, "/invitation/update", internal, map[string]any{"invitation_id": cur, "is_accepted": true}), http.StatusForbidden)
		requireError(t, e.do(http.MethodPost, "/invitation/delete", viewer, map[string]any{"invitation_id": cur}), http.StatusForbidden)
		r = e.do(http.MethodGet, "/invitation/list?page_size=10", masterKey, nil)
		require.Equal(t, http.StatusOK, r.Code, r.Body.String())
		require.EqualValues(t, 1, r.JSON(t)["total"])
		require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/invitation/delete", masterKey, map[string]any{"invitation_id": cur}).Code)
		requireError(t, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+cur, "", nil), http.StatusUnauthorized)

		// expiry to the second
		start := e.now.Now()
		r = e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "new"})
		id := invitationID(t, r.JSON(t)["invitation_link"].(string))
		e.now.Advance(7*24*time.Hour - time.Second - e.now.Now().Sub(start))
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+id, "", nil).Code, "one second before expiry")
		e.now.Advance(2 * time.Second)
		requireError(t, e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": id, "password": "late password!"}), http.StatusUnauthorized)
		// short password → 400, nothing consumed
		e.now.Advance(-2 * time.Second)
		requireError(t, e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": id, "password": "short"}), http.StatusBadRequest)
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+id, "", nil).Code)
		// wrong user id for the link
		requireError(t, e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": id, "user_id": "ian", "password": "good password!"}), http.StatusUnauthorized)
	})
}

// TestConcurrentClaims: of 50 simultaneous claims of one link exactly one
// succeeds.
func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		e.userWithRole("cc", rbac.RoleInternalUser)
		r := e.do(http.MethodPost, "/invitation/new", masterKey, map[string]any{"user_id": "cc"})
		id := invitationID(t, r.JSON(t)["invitation_link"].(string))
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": id, "password": "password number " + itoa(i)})
				mu.Lock()
				codes[r.Code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		require.Equal(t, 1, codes[http.StatusOK], "codes: %v", codes)
		// The others lose; a few may instead be told to retry when the
		// bounded password-hashing queue is full (429, README), which a
		// loaded machine reaches with 50 claims at once.
		require.Equal(t, 49, codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests], "codes: %v", codes)
	})
}

func TestInviteOnUserNewWithoutSMTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "mo@example.com", "send_invite_email": true})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	u := r.JSON(t)
	require.Equal(t, false, u["email_sent"])
	require.Contains(t, u["email_error"], "SMTP_HOST")
	id := invitationID(t, u["invitation_link"].(string))
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/onboarding/get_token?invite_link="+id, "", nil).Code, "the invitation exists even though no mail went out")
}

func TestForgotPasswordAnswersAlike(t *testing.T) {
	t.Parallel()
	e := newEnv(t, databases()[0].open(t))
	e.userWithRole("fay", rbac.RoleInternalUser)
	a := e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "fay@example.com"})
	b := e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "nobody@example.com"})
	require.Equal(t, http.StatusOK, a.Code)
	require.Equal(t, a.Code, b.Code)
	require.Equal(t, a.Body.String(), b.Body.String())
	for i := 0; i < 2; i++ {
		e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "fay@example.com"})
	}
	r := e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "fay@example.com"})
	requireError(t, r, http.StatusTooManyRequests)
	require.NotEmpty(t, r.Hdr.Get("Retry-After"))
	requireError(t, e.do(http.MethodPost, "/user/reset_password", "", map[string]any{"token": "bogus", "new_password": "whatever123"}), http.StatusUnauthorized)
}
