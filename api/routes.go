package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

type httperrHandler = func(c *gin.Context) error

// coreRoutes is the route table of the management API. Read it as the
// access policy: each line names the permission a caller's role needs;
// ownership ("own keys", "team admin") is then checked by the service.
func (s *Server) coreRoutes() []Route {
	const (
		get  = http.MethodGet
		post = http.MethodPost
	)
	return []Route{
		{Method: get, Path: "/health/liveliness", Public: true, Handler: s.health},
		{Method: get, Path: "/health/liveness", Public: true, Handler: s.health},
		{Method: get, Path: "/health/readiness", Public: true, Handler: s.readiness},
		{Method: get, Path: "/openapi.json", Public: true, Handler: s.openAPI},

		// Forward auth authenticates inside the handler: its failures have
		// their own statuses (401/403/429/503) and it must not need CSRF.
		// Envoy forwards the client's method and may append its path.
		{Method: get, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: post, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: http.MethodHead, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: http.MethodPut, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: http.MethodPatch, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: http.MethodDelete, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: http.MethodOptions, Path: "/auth/verify", Public: true, Handler: s.verify},
		{Method: get, Path: "/auth/verify/*path", Public: true, Handler: s.verify},
		{Method: post, Path: "/auth/verify/*path", Public: true, Handler: s.verify},

		{Method: post, Path: "/user/new", Perm: rbac.PermUserWrite, Handler: s.userNew},
		{Method: get, Path: "/user/info", Perm: rbac.PermReadOwn, Handler: s.userInfo},
		{Method: get, Path: "/v2/user/info", Perm: rbac.PermReadOwn, Handler: s.userInfoV2},
		{Method: post, Path: "/user/update", Perm: rbac.PermUserWrite, Handler: s.userUpdate},
		{Method: post, Path: "/user/delete", Perm: rbac.PermUserWrite, Handler: s.userDelete},
		{Method: get, Path: "/user/list", Perm: rbac.PermReadAll, Handler: s.userList},
		{Method: get, Path: "/user/available_roles", Perm: rbac.PermAuthenticated, Handler: s.availableRoles},

		{Method: post, Path: "/team/new", Perm: rbac.PermTeamWrite, Handler: s.teamNew},
		{Method: get, Path: "/team/info", Perm: rbac.PermReadOwn, Handler: s.teamInfo},
		{Method: get, Path: "/team/list", Perm: rbac.PermReadOwn, Handler: s.teamList},
		{Method: post, Path: "/team/update", Perm: rbac.PermTeamWrite, Handler: s.teamUpdate},
		{Method: post, Path: "/team/delete", Perm: rbac.PermTeamWrite, Handler: s.teamDelete},
		{Method: post, Path: "/team/member_add", Perm: rbac.PermTeamMemberWrite,
			Handler: s.teamMember(func(t TeamOps) memberOp { return t.AddMembers })},
		{Method: post, Path: "/team/member_delete", Perm: rbac.PermTeamMemberWrite,
			Handler: s.teamMember(func(t TeamOps) memberOp { return t.RemoveMember })},
		{Method: post, Path: "/team/member_update", Perm: rbac.PermTeamMemberWrite,
			Handler: s.teamMember(func(t TeamOps) memberOp { return t.UpdateMember })},

		{Method: post, Path: "/key/generate", Perm: rbac.PermKeyWriteOwn, Handler: s.keyGenerate},
		{Method: post, Path: "/key/update", Perm: rbac.PermKeyWriteOwn, Handler: s.keyUpdate},
		{Method: post, Path: "/key/delete", Perm: rbac.PermKeyWriteOwn, Handler: s.keyDelete},
		{Method: get, Path: "/key/info", Perm: rbac.PermKeySelf, Handler: s.keyInfo},
		{Method: get, Path: "/key/list", Perm: rbac.PermReadOwn, Handler: s.keyList},
		{Method: post, Path: "/key/regenerate", Perm: rbac.PermKeyWriteOwn, Handler: s.keyRegenerate},
		{Method: post, Path: "/key/:key/regenerate", Perm: rbac.PermKeyWriteOwn, Handler: s.keyRegenerate},
		{Method: post, Path: "/key/block", Perm: rbac.PermKeyWriteOwn, Handler: s.keyBlock(true)},
		{Method: post, Path: "/key/unblock", Perm: rbac.PermKeyWriteOwn, Handler: s.keyBlock(false)},

		{Method: post, Path: "/login", Public: true, Handler: s.loginForm},
		{Method: post, Path: "/v2/login", Public: true, Handler: s.loginJSON},
		{Method: post, Path: "/session/logout", Perm: rbac.PermAuthenticated, Handler: s.sessionLogout},
		{Method: post, Path: "/session/refresh", Perm: rbac.PermAuthenticated, Handler: s.sessionRefresh},
		{Method: post, Path: "/user/password/change", Perm: rbac.PermPasswordChangeOwn, Handler: s.passwordChange},

		// Second factors (api/mfa.go). The second step of a sign-in is
		// public: its token is the credential, spent once.
		{Method: post, Path: "/v2/login/mfa", Public: true, Handler: s.loginMFA},
		{Method: post, Path: "/v2/login/mfa/webauthn", Public: true, Handler: s.loginMFAWebAuthn},
		{Method: post, Path: "/v2/login/mfa/totp/setup", Public: true, Handler: s.enrollTOTPSetup},
		{Method: post, Path: "/v2/login/mfa/totp/confirm", Public: true, Handler: s.enrollTOTPConfirm},
		{Method: post, Path: "/v2/login/mfa/webauthn/register", Public: true, Handler: s.enrollPasskeyBegin},
		{Method: post, Path: "/v2/login/mfa/webauthn/register/finish", Public: true, Handler: s.enrollPasskeyFinish},
		// A user's own factors: any role, from a login session only (the
		// service refuses API keys).
		{Method: get, Path: "/user/mfa", Perm: rbac.PermAuthenticated, Handler: s.mfaStatus},
		{Method: post, Path: "/user/mfa/totp/setup", Perm: rbac.PermAuthenticated, Handler: s.mfaTOTPSetup},
		{Method: post, Path: "/user/mfa/totp/confirm", Perm: rbac.PermAuthenticated, Handler: s.mfaTOTPConfirm},
		{Method: post, Path: "/user/mfa/totp/disable", Perm: rbac.PermAuthenticated, Handler: s.mfaTOTPDisable},
		{Method: post, Path: "/user/mfa/webauthn/register", Perm: rbac.PermAuthenticated, Handler: s.mfaPasskeyBegin},
		{Method: post, Path: "/user/mfa/webauthn/register/finish", Perm: rbac.PermAuthenticated, Handler: s.mfaPasskeyFinish},
		{Method: post, Path: "/user/mfa/webauthn/delete", Perm: rbac.PermAuthenticated, Handler: s.mfaPasskeyDelete},
		{Method: post, Path: "/user/mfa/step_up", Perm: rbac.PermAuthenticated, Handler: s.mfaStepUp},
		{Method: post, Path: "/user/mfa/recovery_codes", Perm: rbac.PermAuthenticated, Handler: s.mfaRecoveryCodes},
		{Method: post, Path: "/user/mfa/reset", Perm: rbac.PermUserWrite, Handler: s.mfaReset},
		{Method: get, Path: "/.well-known/jwks.json", Public: true, Handler: s.jwks},
		{Method: get, Path: "/.well-known/openid-configuration", Public: true, Handler: s.openIDConfiguration},

		{Method: post, Path: "/invitation/new", Perm: rbac.PermInvitationWrite, Handler: s.invitationNew},
		{Method: get, Path: "/invitation/info", Perm: rbac.PermReadAll, Handler: s.invitationInfo},
		{Method: post, Path: "/invitation/update", Perm: rbac.PermInvitationWrite, Handler: s.invitationUpdate},
		{Method: post, Path: "/invitation/delete", Perm: rbac.PermInvitationWrite, Handler: s.invitationDelete},
		{Method: get, Path: "/invitation/list", Perm: rbac.PermReadAll, Handler: s.invitationList},
		{Method: get, Path: "/onboarding/get_token", Public: true, Handler: s.onboardingGetToken},
		{Method: post, Path: "/onboarding/claim_token", Public: true, Handler: s.onboardingClaimToken},
		{Method: post, Path: "/user/forgot_password", Public: true, Handler: s.forgotPassword},
		{Method: post, Path: "/user/reset_password", Public: true, Handler: s.resetPassword},

		{Method: get, Path: "/audit", Perm: rbac.PermReadAll, Handler: s.auditList},

		{Method: get, Path: "/sso/key/generate", Public: true, Handler: s.ssoKeyGenerate},
		{Method: get, Path: "/sso/login/:provider", Public: true, Handler: s.ssoLogin},
		{Method: get, Path: "/sso/callback", Public: true, Handler: s.ssoCallback},
		{Method: get, Path: "/sso/explain", Perm: rbac.PermReadAll, Handler: s.ssoExplain},
		{Method: post, Path: "/sso/backchannel-logout", Public: true, Handler: s.ssoBackchannelLogout},

		{Method: post, Path: "/spend/report", Perm: rbac.PermSpendReport, Handler: s.spendReport},
		{Method: get, Path: "/spend/logs", Perm: rbac.PermReadOwn, Handler: s.spendLogs},

		// LiteLLM's dashboard and clients (api/litellm_compat.go).
		{Method: post, Path: "/v2/key/info", Perm: rbac.PermReadOwn, Handler: s.keyInfoV2},
		{Method: get, Path: "/v2/team/list", Perm: rbac.PermReadOwn, Handler: s.teamListV2},
		{Method: get, Path: "/key/aliases", Perm: rbac.PermReadOwn, Handler: s.keyAliases},
		{Method: get, Path: "/sso/get/ui_settings", Perm: rbac.PermAuthenticated, Handler: s.ssoUISettings},
		{Method: get, Path: "/litellm/.well-known/litellm-ui-config", Public: true, Handler: s.uiConfig},
		{Method: get, Path: "/.well-known/litellm-ui-config", Public: true, Handler: s.uiConfig},
	}
}

// UserInfoHook may add to /user/info's answer (keys, spend).
type UserInfoHook func(ctx context.Context, p auth.Principal, d service.UserDetail, out map[string]any) error

// TeamInfoHook may add to /team/info's answer (team keys).
type TeamInfoHook func(ctx context.Context, p auth.Principal, d service.TeamDetail, out map[string]any) error

// structToMap turns a view struct into a map so hooks can add fields
// while the JSON field names stay those of the struct tags.
func structToMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return map[string]any{}
	}
	return m
}
