package api_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/mail"
	"github.com/keygate/keygate/internal/testutil/smtptest"
)

// TestInvitationMailCompletesOnboarding: the mailed invitation reaches the
// right recipient with the right subject, and its link completes
// onboarding; a reset mail's link resets the password.
func TestInvitationMailCompletesOnboarding(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	m, err := mail.New(mail.Options{Host: "127.0.0.1", Port: sink.Port(), TLS: mail.TLSNone, From: "keygate@example.com"})
	require.NoError(t, err)
	e := newEnvWith(t, databases()[0].open(t), func(o *app.Options) {
		o.BaseURL, o.Mailer = "https://keygate.example.com", app.Mailer(m)
	})

	r := e.do(http.MethodPost, "/user/new", masterKey, map[string]any{"user_email": "mia@example.com", "user_role": "internal_user",
		"send_invite_email": true, "auto_create_key": false})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	require.Equal(t, true, r.JSON(t)["email_sent"], r.Body.String())
	msgs := sink.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"mia@example.com"}, msgs[0].Rcpt)
	body := msgs[0].Text()
	require.Regexp(t, `(?m)^Subject: .*invited`, body)
	link := regexp.MustCompile(`https://keygate\.example\.com/ui/onboarding\?id=[0-9a-f-]{36}`).FindString(body)
	require.NotEmpty(t, link, "the mail carries the real link")
	require.Equal(t, link, r.JSON(t)["invitation_link"])

	r = e.do(http.MethodPost, "/onboarding/claim_token", "", map[string]any{"invitation_link": invitationID(t, link), "password": "mia's password"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	lr, _ := e.login("mia@example.com", "mia's password")
	require.Equal(t, http.StatusOK, lr.Code)

	// reset by mail: the link sets a new password and signs out the old sessions
	old := lr.JSON(t)["token"].(string)
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "mia@example.com"}).Code)
	msgs = sink.Wait(t, 2) // reset mail leaves after the answer
	require.Len(t, msgs, 2)
	body = msgs[1].Text()
	tok := regexp.MustCompile(`https://keygate\.example\.com/ui/reset-password\?token=([A-Za-z0-9_-]{43})`).FindStringSubmatch(body)
	require.Len(t, tok, 2, body)
	r = e.do(http.MethodPost, "/user/reset_password", "", map[string]any{"token": tok[1], "new_password": "mia's new password"})
	require.Equal(t, http.StatusOK, r.Code, r.Body.String())
	requireError(t, e.do(http.MethodGet, "/user/info", old, nil), http.StatusUnauthorized)
	requireError(t, e.do(http.MethodPost, "/user/reset_password", "", map[string]any{"token": tok[1], "new_password": "again password"}), http.StatusUnauthorized)
	lr, _ = e.login("mia@example.com", "mia's new password")
	require.Equal(t, http.StatusOK, lr.Code)
	// nobody@ gets the same answer and no mail
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/user/forgot_password", "", map[string]any{"user_email": "nobody@example.com"}).Code)
	require.Len(t, sink.Messages(), 2)
}
