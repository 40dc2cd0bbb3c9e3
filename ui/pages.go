package ui

import (
	"github.com/gin-gonic/gin"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/rbac"
)

// page is what every page's layout needs. Each page's data struct embeds
// it; templates never receive a map.
type page struct {
	Title  string
	Viewer *viewer // nil on the signed-out pages
	Nav    []navItem
	// CSRF is the token every form echoes: the session's CSRF token when
	// signed in, the signed double-submit token before.
	CSRF  string
	Flash *flash
	Can   perms
}

type viewer struct {
	Email     string
	UserID    string
	RoleLabel string
}

type navItem struct {
	Href    string
	Label   string
	Current bool
}

type flash struct {
	Kind    string // "ok" or "error"
	Message string
}

// perms are the capabilities a page may offer; the service checks them
// again whatever the page shows.
type perms struct {
	KeyWrite        bool
	KeyWriteAny     bool
	ReadAll         bool
	UserWrite       bool
	InvitationWrite bool
	TeamWrite       bool
}

func permsOf(p auth.Principal) perms {
	return perms{KeyWrite: p.Can(rbac.PermKeyWriteOwn), KeyWriteAny: p.Can(rbac.PermKeyWriteAny), ReadAll: p.Can(rbac.PermReadAll),
		UserWrite: p.Can(rbac.PermUserWrite), InvitationWrite: p.Can(rbac.PermInvitationWrite), TeamWrite: p.Can(rbac.PermTeamWrite)}
}

// navFor lists the pages a role may open, marking the current one.
func navFor(p auth.Principal, current string) []navItem {
	items := []navItem{{Href: "/ui/", Label: "My keys"}, {Href: "/ui/spend", Label: "Spend"}}
	if p.Can(rbac.PermReadAll) {
		items = append(items, navItem{Href: "/ui/keys", Label: "All keys"}, navItem{Href: "/ui/users", Label: "Internal Users"})
	}
	items = append(items, navItem{Href: "/ui/teams", Label: "Teams"})
	if p.Can(rbac.PermReadAll) {
		items = append(items, navItem{Href: "/ui/invitations", Label: "Invitations"}, navItem{Href: "/ui/audit", Label: "Audit log"},
			navItem{Href: "/ui/scim", Label: "SCIM"})
	}
	for i := range items {
		items[i].Current = items[i].Href == current
	}
	return items
}

func roleLabel(role string) string {
	if info, ok := rbac.Describe()[rbac.Role(role)]; ok {
		return info.UILabel
	}
	if role == "" {
		return "No role"
	}
	return role
}

// pageFor is the layout data of a signed-in page, with the flash message
// left by the previous POST.
func (u *UI) pageFor(c *gin.Context, title, current string) page {
	pg := u.signedIn(principalOf(c), title, current)
	pg.Flash = u.takeFlash(c)
	return pg
}

func (u *UI) signedIn(p auth.Principal, title, current string) page {
	return page{Title: title, Nav: navFor(p, current), Can: permsOf(p), CSRF: u.opts.Web.CSRFToken(p.SessionID),
		Viewer: &viewer{Email: displayName(p), UserID: p.UserID, RoleLabel: roleLabel(string(p.Role))}}
}

// basePage is the layout data of a page that may be shown signed out
// (error pages keep the navigation when the browser is signed in).
func (u *UI) basePage(c *gin.Context, title string) page {
	if p := principalOf(c); p.SessionID != "" {
		return u.signedIn(p, title, "")
	}
	return page{Title: title, CSRF: u.formToken(c)}
}

func displayName(p auth.Principal) string {
	if p.Email != "" {
		return p.Email
	}
	return p.UserID
}

// ---- signed-out pages ----

type loginPage struct {
	page
	Email           string
	Error           string
	Next            string
	PasswordEnabled bool
	Providers       []SSOProvider
	// Passkeys offers "Sign in with a passkey".
	Passkeys bool
	// Mail: e-mail is set up, so "Forgot your password?" can mail a link.
	Mail bool
}

// setPasswordPage serves onboarding (from an invitation) and password
// reset: the same form, a different secret and wording.
type setPasswordPage struct {
	page
	Heading     string
	Intro       string
	Action      string // form action
	SecretField string // "id" or "token"
	Secret      string
	Email       string
	Button      string
	Error       string
}

type forgotPage struct {
	page
	Email string
	Error string
	Sent  bool
	// NoMail: e-mail is not set up; an administrator makes reset links.
	NoMail bool
}

// messagePage is a page that only says something: errors and unusable
// links.
type messagePage struct {
	page
	Status  int
	Heading string
	Message string
}

// ---- keys ----

type keysPage struct {
	page
	Heading   string
	Intro     string
	All       bool // the all-keys page (owner column, filters)
	Keys      []keyRow
	Pager     pager
	Form      keyForm
	Expiries  []option
	FormError string
	Filter    string
	// ModelsHint and BudgetHint say what an empty field means for the
	// caller (their own models and budget).
	ModelsHint string
	BudgetHint string
	Sort       sortCols
	// GettingStarted is the first-run panel for admins, until dismissed.
	GettingStarted *gettingStarted
}

type keyRow struct {
	Hash     string
	Alias    string
	Name     string // sk-...abcd
	Owner    string
	Team     string
	Models   string // what each level lets the key use
	Limits   []limitLine
	Refusal  string // why the key's requests are refused now
	Created  string
	Expires  string
	Expired  bool
	LastUsed string
	Spend    string
	Budget   budget
	Blocked  bool
	CanEdit  bool
	Delete   *confirmStep // nil when the viewer may not delete it
}

// budget is a key's spend against its limit, drawn as a bar.
type budget struct {
	Set     bool
	Limit   string
	Percent int    // 0..100, the bar's width
	Level   string // "ok", "warn", "over"
}

type keyForm struct {
	Alias    string
	Duration string
	Models   string
	Budget   string
}

type option struct {
	Value    string
	Label    string
	Selected bool
}

type keyCreatedPage struct {
	page
	Key     string
	Name    string
	Alias   string
	Expires string
	Models  string
	Budget  string
	Usage   keyUsage
}

type pager struct {
	Page  int
	Pages int
	Total int64
	Prev  string
	Next  string
}

// ---- spend ----

type spendPage struct {
	page
	Scope     string // "mine" or "all"
	CanAll    bool
	Total     string
	Requests  int64
	Tokens    string
	Days      int
	Truncated bool
	Chart     chart
	// PhoneChart is the same data drawn for narrow screens.
	PhoneChart chart
	Models     []spendModel
	Recent     []spendRow
}

type spendModel struct {
	Model    string
	Requests int64
	Tokens   string
	Spend    string
	Percent  int
}

type spendRow struct {
	When   string
	Model  string
	Key    string
	User   string
	Tokens string
	Spend  string
}

// ---- users and invitations ----

type usersPage struct {
	page
	Query string
	// Mail: e-mail is set up, so a reset is sent rather than shown.
	Mail      bool
	Sort      sortCols
	Users     []userRow
	Pager     pager
	Roles     []roleOption
	Form      userForm
	FormError string
}

type userRow struct {
	ID       string
	Email    string
	Alias    string
	Role     string
	Teams    string
	Keys     int64
	Spend    string
	Created  string
	Disabled bool
	Self     bool
	// MFA: the user has a second factor (badge; admins may reset it).
	MFA bool
	// Row actions that ask first; nil when the viewer may not.
	Delete   *confirmStep
	ResetMFA *confirmStep
	// Status is service.UserStatus: "invited", "active" or "blocked".
	Status string
}

type roleOption struct {
	Value       string
	Label       string
	Description string
	Selected    bool
}

type userForm struct {
	Email string
	Alias string
	Role  string
	Mail  bool
}

type inviteLinkPage struct {
	page
	Created   bool // a new user was created with this invitation
	Email     string
	UserID    string
	Link      string
	Expires   string
	MailSent  bool
	MailError string
}

// resetLinkPage shows an admin-made password-reset link once, or says
// it was mailed.
type resetLinkPage struct {
	page
	Email     string
	Link      string
	Expires   string
	MailSent  bool
	MailError string
}

type invitationsPage struct {
	page
	Rows  []invitationRow
	Pager pager
}

type invitationRow struct {
	UserID    string
	Email     string
	Status    string
	Created   string
	CreatedBy string
	Expires   string
	Accepted  string
	Revoke    *confirmStep
}

// ---- teams ----

type teamsPage struct {
	page
	Teams     []teamRow
	Pager     pager
	FormError string
	Form      teamForm
}

type teamRow struct {
	ID        string
	Alias     string
	Models    string
	Spend     string
	Budget    budget
	Blocked   bool
	Members   []memberRow
	CanManage bool // add/remove members
	Delete    *confirmStep
}

type memberRow struct {
	UserID string
	Email  string
	Role   string
	Admin  bool
	Spend  string
	Budget string // the member's budget in the team, as the form shows it
	DOMID  string
	Remove *confirmStep
}

type teamForm struct {
	Alias  string
	Models string
	Budget string
}

// ---- account ----

type logoutPage struct {
	page
	Redirect string // passed on to the POST, checked there
}

type passwordPage struct {
	page
	Error string
}

type auditPage struct {
	page
	Action string
	Actor  string
	Rows   []auditRow
	Pager  pager
}

type auditRow struct {
	ID     int64
	When   string
	Action string
	Actor  string
	Role   string
	Target string
	IP     string
}
