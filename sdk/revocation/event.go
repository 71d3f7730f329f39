// Package revocation is jotguard's revocation event contract: a signed
// Security Event Token (RFC 8417) carrying one CAEP session-revoked event,
// and the in-memory set that verifiers check access tokens against.
//
// Semantics (docs/tokens-and-events.md):
//   - a session event (sub_id complex{user, session}) rejects every token of
//     that sid, whatever its iat: a revoked session never gets new tokens,
//     and a new login gets a new sid, so a login in the same second as a
//     logout is accepted. The issuer revokes "all sessions" by emitting one
//     session event per session, which keeps this exact;
//   - a user event (sub_id iss_sub) rejects that user's tokens whose iat,
//     in whole seconds as JWTs carry it, is at or before the event's second:
//     a conservative cut-off for administrative revocations;
//   - a token event (sub_id jwt_id) rejects that one jti.
package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk/internal/strictjson"
)

const (
	// TokenType is the JOSE "typ" of a revocation SET.
	TokenType = "secevent+jwt"
	// ContentType is the Kafka record header "content-type" of a SET.
	ContentType = "application/secevent+jwt"
	// SessionRevoked is the CAEP event type every jotguard SET carries.
	SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
)

// Reasons, carried in reason_admin.
const (
	ReasonLogout         = "logout"
	ReasonLogoutGlobal   = "logout_global"
	ReasonPasswordChange = "password_change"
	ReasonAccountDeleted = "account_deleted"
	ReasonRefreshReuse   = "refresh_reuse"
	ReasonAdmin          = "admin"
	// ReasonClientRevoked: a service account was deleted; its event names
	// the client id as sub (iss_sub), and kills every token it was issued.
	ReasonClientRevoked = "client_revoked"
)

// Event is one revocation, as the issuer emits it and a consumer applies it.
// Exactly one scope applies: TokenID set → one token; SessionID set → one
// session; neither → every session of Subject.
type Event struct {
	ID        string    // the SET's jti, for dedupe
	Issuer    string    // iss of the SET and of the tokens it revokes
	Subject   string    // the access tokens' sub: a user id, or a service account's client id
	SessionID string    // sid, for a session event
	TokenID   string    // jti of one access token, for a token event
	At        time.Time // event_timestamp: the revocation instant
	IssuedAt  time.Time // the SET's iat
	Reason    string    // reason_admin
	Initiator string    // initiating_entity: user, admin, policy, system
	TxnID     string    // txn: the request id that caused it
	// Odd names, comma-separated, the informational members (reason_admin,
	// initiating_entity, txn) of a received SET whose JSON had a shape
	// other than the standard one; their values were ignored, the
	// revocation still applies. For the consumer's log. (A string keeps
	// Event comparable.)
	Odd string
}

// SubjectID is an RFC 9493 subject identifier.
type SubjectID struct {
	Format  string     `json:"format"` // complex, iss_sub, jwt_id, opaque
	Iss     string     `json:"iss,omitempty"`
	Sub     string     `json:"sub,omitempty"`
	Jti     string     `json:"jti,omitempty"`
	ID      string     `json:"id,omitempty"` // opaque
	User    *SubjectID `json:"user,omitempty"`
	Session *SubjectID `json:"session,omitempty"`
}

// SessionRevokedEvent is the CAEP event body. The informational members
// are kept as raw JSON when decoding: a consumer must apply a correctly
// signed revocation whatever their shape (SET.Event reads them leniently).
type SessionRevokedEvent struct {
	EventTimestamp   Timestamp       `json:"event_timestamp"`
	InitiatingEntity json.RawMessage `json:"initiating_entity,omitempty"` // a string: user, admin, policy, system
	ReasonAdmin      json.RawMessage `json:"reason_admin,omitempty"`      // CAEP's localized reason: {"en": "logout"}
}

// SET is the JWT payload of a revocation event (RFC 8417). It has no exp.
type SET struct {
	jwt.RegisteredClaims                                // iss, jti, iat, aud
	TxnID                json.RawMessage                `json:"txn,omitempty"` // a string: the request id
	SubID                SubjectID                      `json:"sub_id"`
	Events               map[string]SessionRevokedEvent `json:"events"`
}

// setRules: every member name of a SET at any depth, and its NumericDates.
var setRules = strictjson.NewRules(
	[]string{"iss", "jti", "aud", "txn", "sub_id", "events", "format", "sub", "id", "user", "session",
		"event_timestamp", "initiating_entity", "reason_admin"},
	"iat", "exp", "nbf")

// UnmarshalJSON decodes a SET strictly: a duplicate member, a case variant
// of a member name, or an iat that is not a JSON number is an error, where
// encoding/json alone would pick one reading silently.
func (s *SET) UnmarshalJSON(b []byte) error {
	if err := strictjson.Check(b, setRules); err != nil {
		return fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	type plain SET // without this method
	return json.Unmarshal(b, (*plain)(s))
}

// jsonString marshals s; "" gives nil, which omitempty leaves out.
func jsonString(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// Timestamp is a NumericDate with millisecond precision, independent of
// jwt.TimePrecision (a process-wide setting the sdk must not change).
type Timestamp struct{ time.Time }

// MarshalJSON writes seconds since the epoch with up to 3 decimals.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON reads a JSON number of seconds since the epoch.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return fmt.Errorf("%w: bad NumericDate %.40q", ErrBadEvent, b)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
	return nil
}

// NewSET builds the SET payload for e, addressed to aud.
func NewSET(e Event, aud []string) SET {
	user := &SubjectID{Format: "iss_sub", Iss: e.Issuer, Sub: e.Subject}
	var sub SubjectID
	switch {
	case e.TokenID != "":
		sub = SubjectID{Format: "jwt_id", Iss: e.Issuer, Jti: e.TokenID}
	case e.SessionID != "":
		sub = SubjectID{Format: "complex", User: user,
			Session: &SubjectID{Format: "opaque", ID: e.SessionID}}
	default:
		sub = *user
	}
	ev := SessionRevokedEvent{EventTimestamp: Timestamp{e.At}, InitiatingEntity: jsonString(e.Initiator)}
	if e.Reason != "" {
		ev.ReasonAdmin, _ = json.Marshal(map[string]string{"en": e.Reason}) // strings always marshal
	}
	return SET{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: e.Issuer, ID: e.ID,
			IssuedAt: jwt.NewNumericDate(e.IssuedAt), Audience: aud},
		TxnID:  jsonString(e.TxnID),
		SubID:  sub,
		Events: map[string]SessionRevokedEvent{SessionRevoked: ev},
	}
}

// ErrBadEvent wraps every reason a SET's payload is not a jotguard event.
var ErrBadEvent = errors.New("revocation: not a session-revoked event")

// Event converts a decoded SET back into an Event. A token event carries no
// Subject (jwt_id names only the token); the record key holds it.
func (s SET) Event() (Event, error) {
	ev, ok := s.Events[SessionRevoked]
	switch {
	case !ok || len(s.Events) != 1:
		return Event{}, fmt.Errorf("%w: events must hold exactly one %s", ErrBadEvent, SessionRevoked)
	case s.ID == "" || s.Issuer == "":
		return Event{}, fmt.Errorf("%w: jti and iss are required", ErrBadEvent)
	case ev.EventTimestamp.IsZero():
		return Event{}, fmt.Errorf("%w: event_timestamp is required", ErrBadEvent)
	case s.ExpiresAt != nil:
		return Event{}, fmt.Errorf("%w: a SET has no exp", ErrBadEvent)
	}
	e := Event{ID: s.ID, Issuer: s.Issuer, At: ev.EventTimestamp.Time}
	e.Reason = lenientReason(ev.ReasonAdmin, "reason_admin", &e.Odd)
	e.Initiator = lenientString(ev.InitiatingEntity, "initiating_entity", &e.Odd)
	e.TxnID = lenientString(s.TxnID, "txn", &e.Odd)
	if s.IssuedAt != nil {
		e.IssuedAt = s.IssuedAt.Time
	}
	id := s.SubID
	switch id.Format {
	case "jwt_id":
		e.TokenID = id.Jti
		if id.Iss != s.Issuer || id.Jti == "" {
			return Event{}, fmt.Errorf("%w: jwt_id needs iss (= SET iss) and jti", ErrBadEvent)
		}
	case "iss_sub":
		e.Subject = id.Sub
		if id.Iss != s.Issuer || id.Sub == "" {
			return Event{}, fmt.Errorf("%w: iss_sub needs iss (= SET iss) and sub", ErrBadEvent)
		}
	case "complex":
		if id.User == nil || id.Session == nil || id.User.Format != "iss_sub" || id.Session.Format != "opaque" {
			return Event{}, fmt.Errorf("%w: complex needs user (iss_sub) and session (opaque)", ErrBadEvent)
		}
		e.Subject, e.SessionID = id.User.Sub, id.Session.ID
		if id.User.Iss != s.Issuer || e.Subject == "" || e.SessionID == "" {
			return Event{}, fmt.Errorf("%w: complex needs user iss (= SET iss), sub and session id", ErrBadEvent)
		}
	default:
		return Event{}, fmt.Errorf("%w: sub_id format %q", ErrBadEvent, id.Format)
	}
	return e, nil
}

func addOdd(odd *string, name string) {
	if *odd != "" {
		*odd += ","
	}
	*odd += name
}

// lenientString reads an informational member that should be a string;
// any other JSON value is ignored and its name added to odd.
func lenientString(raw json.RawMessage, name string, odd *string) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		addOdd(odd, name)
		return ""
	}
	return s
}

// lenientReason reads CAEP's localized reason, {"en": "logout"}: the
// English text, else the text of the first language in order. A plain
// string is taken as the reason; any other shape is ignored and its name
// added to odd.
func lenientReason(raw json.RawMessage, name string, odd *string) string {
	if len(raw) == 0 {
		return ""
	}
	var byLang map[string]json.RawMessage
	if err := json.Unmarshal(raw, &byLang); err != nil {
		if s := lenientString(raw, name, odd); s != "" {
			addOdd(odd, name) // a string where a language map belongs
			return s
		}
		return ""
	}
	langs := slices.Sorted(maps.Keys(byLang))
	if i := slices.Index(langs, "en"); i > 0 {
		langs[0], langs[i] = langs[i], langs[0]
	}
	for _, l := range langs {
		var s string
		if json.Unmarshal(byLang[l], &s) == nil {
			return s
		}
	}
	addOdd(odd, name)
	return ""
}

// compile-time check that the JSON shape is what we think.
var _ json.Marshaler = Timestamp{}
