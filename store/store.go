// Package store declares Keygate's records, the small per-aggregate
// interfaces the service layer uses to read and change them, and the
// sentinel errors every implementation returns. It imports nothing of
// Keygate's; store/gormstore implements it for SQLite and PostgreSQL and
// store/storetest holds the conformance suite both must pass.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them with %w; callers test with
// errors.Is.
var (
	// ErrNotFound: the addressed record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a uniqueness rule (id, e-mail, key alias, request id)
	// or a conditional update (invitation already consumed) failed.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable: the database could not be reached, or did not
	// answer within the store's bound (a lock held too long, a hung
	// server). Callers may retry later.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrNotWritable: the database refuses writes (disk full, read-only
	// file or standby server). Returned together with ErrUnavailable.
	ErrNotWritable = errors.New("store: not writable")
)

// Store is every aggregate plus transactions. Handlers never see it whole:
// they declare the narrow interface they need.
type Store interface {
	Users
	Teams
	Keys
	Spend
	Invitations
	Sessions
	SigningKeys
	LoginAttempts
	Audit
	MFA
	BudgetHolds
	// Tx runs fn in one database transaction; fn receives a Store bound to
	// it. An error (or panic) from fn rolls everything back. Calling Tx on a
	// Store that is already inside a transaction joins it.
	Tx(ctx context.Context, fn func(Store) error) error
	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	// Notify publishes payload on channel to every replica listening.
	// Inside Tx it is delivered when the transaction commits and never if it
	// rolls back. A single-instance store may do nothing.
	Notify(ctx context.Context, channel, payload string) error
}

// What a store's listener hands its callback besides the payloads of
// notifications. PostgreSQL text cannot hold a NUL byte, so no NOTIFY can
// forge either.
const (
	// ListenSubscribed: the listener has subscribed, the first time or
	// again after losing its connection. Notifications sent before were
	// not heard, so the caller drops what it cached; from now on every
	// change is heard.
	ListenSubscribed = "\x00subscribed"
	// ListenLost: the listener lost its connection; notifications are
	// lost until the next ListenSubscribed.
	ListenLost = "\x00lost"
	// ListenAlive: an idle listener's connection answered just now (sent
	// at its heartbeat), so nothing sent until then was missed.
	ListenAlive = "\x00alive"
)

// Page selects a slice of a listing. Limit 0 means the implementation's
// default (25); implementations cap Limit at 1000.
type Page struct {
	Offset int
	Limit  int
}

// Listing orders: the columns a listing may be sorted by. Each filter
// says which it accepts; any other value keeps the default order, so a
// caller's string never reaches SQL.
const (
	OrderCreated  = "created"
	OrderAlias    = "alias"     // keys: case-insensitive, unnamed keys last
	OrderSpend    = "spend"     // keys
	OrderLastUsed = "last_used" // keys: never-used keys last
	OrderEmail    = "email"     // users: case-insensitive
	OrderRole     = "role"      // users
)

// Order sorts a listing. By "" is the listing's default (creation, oldest
// first); ties are broken by the primary key in the same direction.
type Order struct {
	By   string
	Desc bool
}

// ---- users ----

// User is a person (or service identity) that may hold keys and log in.
type User struct {
	ID             string
	Email          string // unique case-insensitively when not empty
	Alias          string
	Role           string
	PasswordHash   string // PHC string; empty = no password set
	Models         []string
	MaxBudget      *float64
	BudgetDuration string
	BudgetResetAt  *time.Time
	Spend          float64
	TPMLimit       *int64
	RPMLimit       *int64
	Metadata       map[string]any
	SSOIssuer      string // (SSOIssuer, SSOSubject) is unique when set
	SSOSubject     string
	Disabled       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time

	// ExternalID is the identity provider's id for the user (SCIM
	// externalId); not unique, case-sensitive.
	ExternalID string
	// Directory is what the identity provider pushed by SCIM; nil for
	// users it never managed.
	Directory *DirectoryProfile
}

// UserFilter narrows ListUsers. Empty fields do not filter.
type UserFilter struct {
	Role          string
	UserIDs       []string
	EmailContains string // case-insensitive substring
	TeamID        string
	SSOSubjects   []string
	Page          Page
	// Order accepts OrderCreated, OrderEmail and OrderRole.
	Order Order

	// Where is a search condition over the User* fields (SCIM filters).
	Where *Cond
}

// Users stores User records.
type Users interface {
	// CreateUser inserts u; ErrConflict on a duplicate id or e-mail.
	// CreatedAt/UpdatedAt are set by the caller.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail matches case-insensitively.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	GetUserBySSO(ctx context.Context, issuer, subject string) (User, error)
	// UpdateUser reads the user, lets fn change it, and writes it back
	// atomically. ErrNotFound if absent; ErrConflict if the new e-mail is
	// taken. The ID cannot change.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser removes the user and, in the same transaction, their keys,
	// invitations, memberships, sessions and second factors.
	DeleteUser(ctx context.Context, id string) error
	// ListUsers returns one page, ordered by f.Order (default creation
	// then id), and the total number of matching users.
	ListUsers(ctx context.Context, f UserFilter) ([]User, int64, error)
}

// ---- teams ----

// Team groups users and keys.
type Team struct {
	ID             string
	Alias          string
	Models         []string
	MaxBudget      *float64
	BudgetDuration string
	BudgetResetAt  *time.Time
	Spend          float64
	TPMLimit       *int64
	RPMLimit       *int64
	Metadata       map[string]any
	Blocked        bool
	CreatedAt      time.Time
	UpdatedAt      time.Time

	// ExternalID is the identity provider's id for the group (SCIM).
	ExternalID string
	// DirectoryManaged: the team is a group the identity provider
	// provisioned by SCIM; only such teams are visible to SCIM and count
	// for roles mapped from groups.
	DirectoryManaged bool
}

// Membership places a user in a team with a team role ("admin" or "user").
type Membership struct {
	TeamID          string
	UserID          string
	Role            string
	MaxBudgetInTeam *float64
	Spend           float64
	CreatedAt       time.Time
}

// TeamFilter narrows ListTeams.
type TeamFilter struct {
	UserID string // only teams this user is a member of
	Page   Page

	// Where is a search condition over the Team* fields (SCIM filters).
	Where *Cond
}

// Teams stores teams and memberships.
type Teams interface {
	CreateTeam(ctx context.Context, t *Team) error
	GetTeam(ctx context.Context, id string) (Team, error)
	UpdateTeam(ctx context.Context, id string, fn func(*Team) error) (Team, error)
	// DeleteTeam removes the team and its memberships; keys of the team
	// are deleted too (a team key without a team would widen nothing but
	// would dangle).
	DeleteTeam(ctx context.Context, id string) error
	ListTeams(ctx context.Context, f TeamFilter) ([]Team, int64, error)
	// PutMembership inserts or updates (team, user).
	PutMembership(ctx context.Context, m Membership) error
	GetMembership(ctx context.Context, teamID, userID string) (Membership, error)
	DeleteMembership(ctx context.Context, teamID, userID string) error
	ListMembershipsByTeam(ctx context.Context, teamID string) ([]Membership, error)
	ListMembershipsByUser(ctx context.Context, userID string) ([]Membership, error)
}

// ---- keys ----

// Key is an API key. Only the SHA-256 hex of the raw key is stored.
type Key struct {
	Hash    string // SHA-256 hex of the raw key; primary key
	KeyName string // "sk-...abcd"
	Alias   string // unique per owner (UserID) when not empty
	UserID  string // empty: ownerless (admin-made service key)
	TeamID  string
	Models  []string
	// AllowedRoutes limits the routes the key may call (LiteLLM's
	// allowed_routes); empty means no limit.
	AllowedRoutes  []string
	MaxBudget      *float64
	BudgetDuration string
	BudgetResetAt  *time.Time
	Spend          float64
	TPMLimit       *int64
	RPMLimit       *int64
	Blocked        bool
	ExpiresAt      *time.Time
	KeyType        string
	Metadata       map[string]any
	CreatedBy      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LastActive     *time.Time
}

// KeyAccess is a key with its owner, team and the owner's memberships, as
// far as the access decision reads them. Filled: Key (all but KeyName,
// BudgetDuration, Metadata, CreatedBy, CreatedAt, UpdatedAt, LastActive);
// Owner (ID, Email, Role, Models, MaxBudget, BudgetResetAt, Spend,
// Disabled), nil when the key has no owner or it no longer exists; Team
// (ID, Models, MaxBudget, BudgetResetAt, Spend, Blocked), nil likewise;
// Memberships (TeamID, UserID, MaxBudgetInTeam, Spend) of the owner.
type KeyAccess struct {
	Key         Key
	Owner       *User
	Team        *Team
	Memberships []Membership
}

// KeyFilter narrows ListKeys. Empty fields do not filter.
type KeyFilter struct {
	UserID   string
	TeamID   string
	KeyHash  string
	KeyAlias string
	KeyType  string
	// Owner matches the owner's user id exactly or, case-insensitively,
	// part of the owner's e-mail (what listings show).
	Owner string
	Page  Page
	// Order accepts OrderCreated, OrderAlias, OrderSpend and
	// OrderLastUsed.
	Order Order
}

// Keys stores API keys.
type Keys interface {
	// CreateKey inserts k; ErrConflict on a duplicate hash or on an alias
	// its owner already gave another key.
	CreateKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, hash string) (Key, error)
	// GetKeyByAlias returns the key of userID ("" = ownerless) named
	// alias.
	GetKeyByAlias(ctx context.Context, userID, alias string) (Key, error)
	UpdateKey(ctx context.Context, hash string, fn func(*Key) error) (Key, error)
	// ReplaceKeyHash moves the record to a new hash (regeneration) and
	// applies fn in the same transaction.
	ReplaceKeyHash(ctx context.Context, oldHash, newHash string, fn func(*Key) error) (Key, error)
	DeleteKey(ctx context.Context, hash string) error
	ListKeys(ctx context.Context, f KeyFilter) ([]Key, int64, error)
	// GetKeyAccess returns the key with what the access decision reads
	// about it — its owner, its team and the owner's memberships — in one
	// database round trip (the verification hot path's cache miss). Only
	// the fields the decision uses are filled (see KeyAccess).
	// ErrNotFound when the key does not exist.
	GetKeyAccess(ctx context.Context, hash string) (KeyAccess, error)
	// TouchKeys records last-active times in one batch; unknown hashes
	// are ignored.
	TouchKeys(ctx context.Context, lastActive map[string]time.Time) error
	// ResetDueBudgets zeroes the spend of every key, user and team whose
	// BudgetResetAt is at or before now (a team's memberships with it, as
	// MaxBudgetInTeam runs on the team's period), and moves BudgetResetAt
	// forward by next(BudgetDuration, oldResetAt), called repeatedly until
	// it is after now. When next returns the zero time (unparseable
	// duration) or does not move forward, BudgetResetAt becomes nil and the
	// row stops resetting. Returns what was reset, each list sorted, for
	// cache invalidation. One transaction.
	ResetDueBudgets(ctx context.Context, now time.Time, next func(duration string, from time.Time) time.Time) (BudgetResets, error)
}

// BudgetResets names the rows whose budget period ResetDueBudgets
// restarted.
type BudgetResets struct {
	KeyHashes []string
	UserIDs   []string
	TeamIDs   []string
}

// ---- spend ----

// SpendEntry is one metered request.
type SpendEntry struct {
	RequestID        string // unique
	KeyHash          string
	UserID           string
	TeamID           string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	Spend            float64
	CreatedAt        time.Time
	// HoldID names the call's reservation in BudgetHolds, if it has one:
	// recording the entry deletes it in the same transaction, so the cost
	// is never counted twice (spend and hold) nor missing from both.
	HoldID string
}

// SpendFilter narrows ListSpend. Empty fields do not filter.
type SpendFilter struct {
	UserID    string
	KeyHash   string
	TeamID    string
	RequestID string
	Since     *time.Time
	Until     *time.Time
	Page      Page
}

// Spend records usage.
type Spend interface {
	// RecordSpend inserts e and adds e.Spend to the key's, the user's and
	// the team's running totals (and the membership's), all in one
	// transaction. A duplicate RequestID returns ErrConflict and adds
	// nothing.
	RecordSpend(ctx context.Context, e SpendEntry) error
	// InsertSpendHistory inserts e as past usage whose spend the running
	// totals already hold (imported history): no total moves. A duplicate
	// RequestID returns ErrConflict.
	InsertSpendHistory(ctx context.Context, e SpendEntry) error
	// RecordSpendBatch records many metered requests in one transaction
	// (group commit: one insert and one running-total update per key,
	// user, team and membership, however many entries) and returns the
	// entries it stored, with the ids they were stored under. It is
	// idempotent, so a batch whose commit went unanswered may be written
	// again: an entry whose RequestID is already stored with the same
	// content (key, user, team, model, tokens, spend, time) is skipped. An
	// entry whose RequestID is stored with other content is a different
	// request under a reused id: it is stored under RequestID + "-" + a
	// digest of its content, which a replay finds again. All or nothing:
	// on any error nothing is stored.
	RecordSpendBatch(ctx context.Context, es []SpendEntry) ([]SpendEntry, error)
	ListSpend(ctx context.Context, f SpendFilter) ([]SpendEntry, int64, error)
}

// ---- budget holds ----

// BudgetRef names one budget and the row whose spend it limits.
type BudgetRef struct {
	// ID is the budget's name, the same on every instance: "key:<hash>",
	// "user:<id>", "team:<id>" or "member:<team>:<user>".
	ID string
	// Scope says which row's spend the budget limits: "key" (KeyHash),
	// "user" (UserID), "team" (TeamID) or "team member" (TeamID and
	// UserID).
	Scope   string
	KeyHash string
	UserID  string
	TeamID  string
}

// BudgetFigure is one budget as the database has it when a hold is taken.
type BudgetFigure struct {
	// Spend is the row's recorded spend (0 when the row is gone).
	Spend float64
	// Held is what the unexpired holds of calls in flight reserve against
	// the budget, every instance's (their estimates).
	Held float64
	// Settled is the real cost of finished calls whose spend is not yet
	// recorded (their holds, settled).
	Settled float64
}

// BudgetHold is one call's reservation against the budgets that apply to
// it.
type BudgetHold struct {
	ID      string
	Amount  float64
	Budgets []BudgetRef
	// At is when the hold is taken: holds expired by then no longer count.
	At time.Time
	// Expires ends the hold unless it is renewed (RenewBudgetHolds): the
	// reservations of an instance that died do not outlive it for long.
	Expires time.Time
}

// BudgetHolds keeps reservations against budgets in the database, where
// every instance sees every other's.
type BudgetHolds interface {
	// HoldBudgets serialises with every other HoldBudgets on any of h's
	// budgets, reads their figures in one snapshot (figures[i] is
	// h.Budgets[i]'s), and stores the hold when admit returns nil, all in
	// one transaction. admit's error is returned, wrapped, and nothing is
	// stored. Recording a SpendEntry with HoldID h.ID deletes the hold in
	// the spend's own transaction.
	HoldBudgets(ctx context.Context, h BudgetHold, admit func(figures []BudgetFigure) error) error
	// SettleBudgetHold replaces a hold's estimate by the call's real cost,
	// which then counts as spent (Settled), not in flight, until the spend
	// is recorded.
	SettleBudgetHold(ctx context.Context, id string, amount float64) error
	// ReleaseBudgetHolds deletes the holds (a call that ends unbilled).
	ReleaseBudgetHolds(ctx context.Context, ids ...string) error
	// RenewBudgetHolds moves the holds' expiry to until, and deletes every
	// hold expired at now (an instance that died left them).
	RenewBudgetHolds(ctx context.Context, now, until time.Time, ids ...string) error
}

// ---- invitations ----

// Invitation purposes. Password-reset tokens share the invitation table
// and its single-use consume; Purpose keeps the two kinds apart.
const (
	// PurposeInvitation is an invitation link; "" is stored as this.
	PurposeInvitation = "invitation"
	// PurposePasswordReset is a password-reset token.
	PurposePasswordReset = "password_reset"
	// PurposeAll, in InvitationFilter.Purpose only, lists every purpose.
	PurposeAll = "*"
)

// Invitation lets one user set a password once: an invitation link or a
// password-reset token, told apart by Purpose. Only the SHA-256 hex of the
// link id is stored.
type Invitation struct {
	IDHash string
	UserID string
	// Purpose is PurposeInvitation or PurposePasswordReset; "" is written
	// and read back as PurposeInvitation.
	Purpose    string
	IsAccepted bool
	AcceptedAt *time.Time
	ExpiresAt  time.Time
	CreatedAt  time.Time
	CreatedBy  string
	UpdatedAt  time.Time
	UpdatedBy  string
}

// InvitationFilter narrows ListInvitations.
type InvitationFilter struct {
	UserID string
	// Purpose "" (or PurposeInvitation) lists invitations only, so callers
	// that predate reset tokens never see them; PurposePasswordReset lists
	// reset tokens; PurposeAll lists both.
	Purpose string
	Page    Page
}

// Invitations stores invitation links.
type Invitations interface {
	// CreateInvitation inserts inv and deletes every unaccepted invitation
	// of the same user and purpose (a new invitation supersedes older
	// invitations, a new reset token older reset tokens, never the other
	// kind).
	CreateInvitation(ctx context.Context, inv *Invitation) error
	GetInvitation(ctx context.Context, idHash string) (Invitation, error)
	// ConsumeInvitation marks the invitation accepted with one conditional
	// update that succeeds only while it is unaccepted and now < ExpiresAt.
	// Of any number of concurrent calls exactly one succeeds; the others
	// get ErrConflict (used or expired) or ErrNotFound (unknown).
	ConsumeInvitation(ctx context.Context, idHash string, now time.Time, by string) (Invitation, error)
	UpdateInvitation(ctx context.Context, idHash string, fn func(*Invitation) error) (Invitation, error)
	DeleteInvitation(ctx context.Context, idHash string) error
	ListInvitations(ctx context.Context, f InvitationFilter) ([]Invitation, int64, error)
}

// ---- sessions ----

// Session is a server-side login session; session JWTs carry its ID.
type Session struct {
	ID          string
	UserID      string
	Role        string // the role the session was issued with
	LoginMethod string // "password" | "sso" | "passkey"
	// AMR lists how the user proved who they are (RFC 8176 values: "pwd",
	// "otp", "hwk", "swk", "mfa"); nil for SSO sessions, whose identity
	// provider decides.
	AMR       []string
	IDToken   string // SSO id_token, for RP-initiated logout hints
	SSOSID    string // the IdP's sid claim, for back-channel logout
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// Sessions stores login sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// RevokeSession sets RevokedAt if not yet set; ErrNotFound if absent.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeUserSessions revokes every live session of the user except
	// those whose id is in keep, and returns the ids it revoked.
	RevokeUserSessions(ctx context.Context, userID string, at time.Time, keep ...string) ([]string, error)
	// RevokeSessionsBySSOSID revokes the sessions carrying the IdP sid.
	RevokeSessionsBySSOSID(ctx context.Context, ssoSID string, at time.Time) ([]string, error)
}

// ---- signing keys ----

// SigningKey is a JWT signing key pair; the private part is encrypted by
// the caller before it reaches the store.
type SigningKey struct {
	KID           string
	Algorithm     string // "ES256" | "RS256"
	PublicPEM     string
	PrivateSealed []byte
	CreatedAt     time.Time
	// NotAfter: the key stops signing at this time (rotation).
	NotAfter time.Time
	// VerifyUntil: the key leaves the JWKS at this time.
	VerifyUntil time.Time
}

// SigningKeys stores JWT signing keys.
type SigningKeys interface {
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys returns keys with VerifyUntil after now, newest first.
	ListSigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)
	// UpdateSigningKey changes NotAfter/VerifyUntil of kid.
	UpdateSigningKey(ctx context.Context, kid string, fn func(*SigningKey) error) (SigningKey, error)
}

// ---- login attempts ----

// LoginAttempts counts failed logins per subject ("account:<email>" or
// "ip:<addr>") so that every replica shares the count.
type LoginAttempts interface {
	RecordLoginFailure(ctx context.Context, subject string, at time.Time) error
	// CountLoginFailures counts failures of subject at or after since, and
	// returns the time of the oldest of them (zero when none).
	CountLoginFailures(ctx context.Context, subject string, since time.Time) (int64, time.Time, error)
	ClearLoginFailures(ctx context.Context, subject string) error
	// TakeLoginAttempt records an attempt of subject at at unless limit
	// attempts of it are already recorded at or after since, in one
	// atomic step: however many callers race, on however many connections
	// or replicas, at most limit attempts are taken per window. A caller
	// records before it checks a password, so a burst cannot outrun the
	// count. Attempts of subject older than since are forgotten.
	TakeLoginAttempt(ctx context.Context, subject string, at, since time.Time, limit int64) (AttemptWindow, error)
}

// AttemptWindow is what TakeLoginAttempt saw.
type AttemptWindow struct {
	// Taken reports whether this attempt was recorded (false: the limit
	// was already reached).
	Taken bool
	// Count is the number of attempts in the window, this one included
	// when taken.
	Count int64
	// Oldest is the earliest attempt in the window (zero when none); the
	// window frees up at Oldest + its length.
	Oldest time.Time
}

// ---- audit ----

// AuditEvent is one append-only record of a security-relevant change.
type AuditEvent struct {
	ID         int64
	At         time.Time
	Action     string // e.g. "user.created"
	ActorID    string
	ActorRole  string
	TargetType string
	TargetID   string
	ClientIP   string
	RequestID  string
	Before     map[string]any
	After      map[string]any
}

// AuditFilter narrows ListAudit.
type AuditFilter struct {
	Action   string
	ActorID  string
	TargetID string
	Since    *time.Time
	Until    *time.Time
	Page     Page

	// ActionPrefix matches actions that start with it (e.g. "scim.").
	ActionPrefix string
	// Actor matches the actor's id exactly or, case-insensitively, part
	// of the acting user's e-mail.
	Actor string
	// NewestFirst lists the latest events first (default oldest first).
	NewestFirst bool
}

// Audit appends and reads audit events.
type Audit interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, int64, error)
}
