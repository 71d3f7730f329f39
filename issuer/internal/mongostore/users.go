package mongostore

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names.
const (
	UsersCollection      = "users"
	EmailsCollection     = "user_emails"
	UsernamesCollection  = "user_usernames"
	IdentitiesCollection = "user_identities"
	// IdentityRevisionsCollection holds the claims of the revisions of
	// users' identities (see setIdentities).
	IdentityRevisionsCollection = "user_identity_revisions"
)

// Users implements auth.UserStore. Users are keyed by id, and three small
// collections keyed by the normalized email, the username key and the
// identity key (auth.IdentityKey: provider and subject) make uniqueness
// atomic and lookups cheap (by _id).
type Users struct {
	users, emails, usernames, identities, revisions *mongo.Collection
}

var _ auth.UserStore = (*Users)(nil)

type userDoc struct {
	ID            string    `bson:"_id"`
	Email         string    `bson:"email"`
	Username      string    `bson:"username,omitempty"`
	UsernameKey   string    `bson:"username_key,omitempty"`
	FirstName     string    `bson:"first_name,omitempty"`
	LastName      string    `bson:"last_name,omitempty"`
	PasswordHash  string    `bson:"password_hash"`
	EmailVerified bool      `bson:"email_verified"`
	Roles         []string  `bson:"roles,omitempty"`
	Disabled      bool      `bson:"disabled,omitempty"`
	CreatedAt     time.Time `bson:"created_at"`
	// Identities are the user's links to provider accounts; IdentitiesRev
	// is the revision of the list (absent: 0), see setIdentities.
	Identities    []identityDoc `bson:"identities,omitempty"`
	IdentitiesRev int64         `bson:"identities_rev,omitempty"`
}

type identityDoc struct {
	Provider string `bson:"provider"`
	Subject  string `bson:"subject"`
	Email    string `bson:"email,omitempty"`
	// EmailVerified: absent (false) on links written before it was kept,
	// which are then taken for unverified: the safe side (see
	// auth.Identity).
	EmailVerified bool      `bson:"email_verified,omitempty"`
	LinkedAt      time.Time `bson:"linked_at"`
}

type lookupDoc struct {
	Key       string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// staleClaim is how old a claim without its user must be before a new
// sign-up may take it over: a sign-up that crashed between its inserts.
const staleClaim = time.Minute

// NewUsers returns the store and creates its unique indexes.
func NewUsers(ctx context.Context, db *mongo.Database) (*Users, error) {
	u := &Users{users: db.Collection(UsersCollection), emails: db.Collection(EmailsCollection),
		usernames: db.Collection(UsernamesCollection), identities: db.Collection(IdentitiesCollection),
		revisions: db.Collection(IdentityRevisionsCollection)}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	have, err := indexNames(ctx, u.users)
	if err != nil {
		return nil, unavailable("list user indexes", err)
	}
	create := func(m mongo.IndexModel) error {
		_, err := u.users.Indexes().CreateOne(ctx, m)
		return err
	}
	if !have["email_unique"] {
		err = create(mongo.IndexModel{Keys: bson.D{{Key: "email", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("email_unique")})
	}
	if err == nil && !have["username_unique"] && !have["username_unique_sparse"] {
		err = create(mongo.IndexModel{Keys: bson.D{{Key: "username_key", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("username_unique").
				SetPartialFilterExpression(bson.D{{Key: "username_key", Value: bson.D{{Key: "$exists", Value: true}}}})})
		if err != nil { // FerretDB has no partial indexes: fall back to sparse
			err = create(mongo.IndexModel{Keys: bson.D{{Key: "username_key", Value: 1}},
				Options: options.Index().SetUnique(true).SetSparse(true).SetName("username_unique_sparse")})
		}
	}
	if err != nil {
		return nil, unavailable("create user indexes", err)
	}
	return u, nil
}

// Create implements auth.UserStore. The email claim is inserted first, then
// the username claim (undone if taken), then the user.
func (u *Users) Create(ctx context.Context, usr auth.User) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	ekey := auth.EmailKey(usr.Email)
	err := u.claim(ctx, u.emails, ekey, usr.ID, emailKey)
	switch {
	case mongo.IsDuplicateKeyError(err):
		return auth.ErrEmailTaken
	case err != nil:
		return unavailable("insert email", err)
	}
	undo := func(coll *mongo.Collection, key string) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
		defer cancel()
		_, _ = coll.DeleteOne(cctx, bson.D{{Key: "_id", Value: key}, {Key: "user_id", Value: usr.ID}})
	}
	ukey := auth.NormalizeUsername(usr.Username)
	if ukey != "" {
		err := u.claim(ctx, u.usernames, ukey, usr.ID, usernameKey)
		switch {
		case mongo.IsDuplicateKeyError(err):
			undo(u.emails, ekey)
			return auth.ErrUsernameTaken
		case err != nil:
			undo(u.emails, ekey)
			return unavailable("insert username", err)
		}
	}
	var ikeys []string // the identities claimed so far
	undoAll := func() {
		for _, k := range ikeys {
			undo(u.identities, k)
		}
		if ukey != "" {
			undo(u.usernames, ukey)
		}
		undo(u.emails, ekey)
	}
	for _, id := range usr.Identities {
		key := auth.IdentityKey(id.Provider, id.Subject)
		err := u.claim(ctx, u.identities, key, usr.ID, identityKey(key))
		switch {
		case mongo.IsDuplicateKeyError(err):
			undoAll()
			return auth.ErrIdentityTaken
		case err != nil:
			undoAll()
			return unavailable("insert identity", err)
		}
		ikeys = append(ikeys, key)
	}
	doc := userDoc{ID: usr.ID, Email: usr.Email, Username: usr.Username, UsernameKey: ukey,
		FirstName: usr.FirstName, LastName: usr.LastName, PasswordHash: usr.PasswordHash,
		EmailVerified: usr.EmailVerified, Roles: usr.Roles, Disabled: usr.Disabled, CreatedAt: usr.CreatedAt,
		Identities: identityDocs(usr.Identities)}
	if _, err := u.users.InsertOne(ctx, doc); err != nil {
		undoAll()
		if mongo.IsDuplicateKeyError(err) {
			return auth.ErrEmailTaken // a user written before the lookup collections existed
		}
		return unavailable("insert user", err)
	}
	return nil
}

// emailKey and usernameKey give the key a user holds in the emails and
// usernames collections.
func emailKey(u auth.User) string    { return auth.EmailKey(u.Email) }
func usernameKey(u auth.User) string { return auth.NormalizeUsername(u.Username) }

// identityKey gives key if a user holds that identity, "" otherwise: a
// user has several.
func identityKey(key string) func(auth.User) string {
	return func(u auth.User) string {
		if hasIdentity(u, key) {
			return key
		}
		return ""
	}
}

func hasIdentity(u auth.User, key string) bool {
	return slices.ContainsFunc(u.Identities, func(i auth.Identity) bool { return auth.IdentityKey(i.Provider, i.Subject) == key })
}

func identityDocs(ids []auth.Identity) []identityDoc {
	out := make([]identityDoc, len(ids))
	for i, id := range ids {
		out[i] = identityDoc{Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
			LinkedAt: id.LinkedAt}
	}
	return out
}

// claim inserts the lookup document key → userID; a claim userID holds
// already is no error. A claim is stale when its user does not exist or no
// longer has the key (keyOf gives a user's key): left by a sign-up, a
// change or a deletion that stopped midway, or by the loser of two racing
// changes of one user. When it is stale and old enough that what made it
// cannot still be running, it is removed and the insert retried once;
// otherwise the duplicate-key error is returned.
func (u *Users) claim(ctx context.Context, coll *mongo.Collection, key, userID string, keyOf func(auth.User) string) error {
	_, err := coll.InsertOne(ctx, lookupDoc{Key: key, UserID: userID, CreatedAt: time.Now().UTC()})
	if !mongo.IsDuplicateKeyError(err) {
		return err
	}
	var old lookupDoc
	if coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&old) != nil {
		return err
	}
	if old.UserID == userID {
		return nil
	}
	if old.CreatedAt.IsZero() || time.Since(old.CreatedAt) < staleClaim {
		return err
	}
	if holder, ferr := u.ByID(ctx, old.UserID); ferr == nil && keyOf(holder) == key ||
		ferr != nil && !errors.Is(ferr, auth.ErrUserNotFound) {
		return err
	}
	if _, derr := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "user_id", Value: old.UserID}}); derr != nil {
		return err
	}
	_, err = coll.InsertOne(ctx, lookupDoc{Key: key, UserID: userID, CreatedAt: time.Now().UTC()})
	return err
}

// ByID implements auth.UserStore.
func (u *Users) ByID(ctx context.Context, id string) (auth.User, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	d, err := u.userDoc(ctx, id)
	if err != nil {
		return auth.User{}, err
	}
	return d.user(), nil
}

func (d userDoc) user() auth.User {
	var ids []auth.Identity
	for _, i := range d.Identities {
		ids = append(ids, auth.Identity{Provider: i.Provider, Subject: i.Subject, Email: i.Email,
			EmailVerified: i.EmailVerified, LinkedAt: i.LinkedAt.UTC()})
	}
	return auth.User{ID: d.ID, Email: d.Email, Username: d.Username, FirstName: d.FirstName,
		LastName: d.LastName, PasswordHash: d.PasswordHash, EmailVerified: d.EmailVerified,
		Roles: d.Roles, Disabled: d.Disabled, CreatedAt: d.CreatedAt.UTC(), Identities: ids}
}

// ByEmail implements auth.UserStore.
func (u *Users) ByEmail(ctx context.Context, email string) (auth.User, error) {
	return u.byKey(ctx, u.emails, auth.NormalizeEmail(email))
}

// ByUsername implements auth.UserStore.
func (u *Users) ByUsername(ctx context.Context, username string) (auth.User, error) {
	return u.byKey(ctx, u.usernames, auth.NormalizeUsername(username))
}

// byKey reads the lookup document, then the user: two reads by _id whether
// or not the account exists (an unknown key reads a user id no account
// has), so the time a login takes does not tell which addresses and
// usernames have accounts.
func (u *Users) byKey(ctx context.Context, coll *mongo.Collection, key string) (auth.User, error) {
	if key == "" {
		key = absentKey // a refused spelling: no account, the same work
	}
	lctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	var l lookupDoc
	err := coll.FindOne(lctx, bson.D{{Key: "_id", Value: key}}).Decode(&l)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		l.UserID = absentKey
	case err != nil:
		return auth.User{}, unavailable("find "+coll.Name(), err)
	}
	return u.ByID(ctx, l.UserID) // a claim without its user (a racing sign-up) is not found either
}

// absentKey is an _id no document has: ids, addresses and username keys
// never contain "~".
const absentKey = "~absent"

// SetPasswordHash implements auth.UserStore.
func (u *Users) SetPasswordHash(ctx context.Context, id, hash string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	res, err := u.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: hash}}}})
	switch {
	case err != nil:
		return unavailable("update password", err)
	case res.MatchedCount == 0:
		return auth.ErrUserNotFound
	}
	return nil
}

// release deletes userID's claim of key, if it still holds it.
func (u *Users) release(ctx context.Context, coll *mongo.Collection, key, userID string) error {
	if key == "" {
		return nil
	}
	_, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "user_id", Value: userID}})
	return err
}

// releaseAfter is release for a claim that only frees a key once the write
// that made it stale is done: a failure is not the caller's (the claim is
// stale, and claim takes a stale one over).
func (u *Users) releaseAfter(ctx context.Context, coll *mongo.Collection, key, userID string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
	defer cancel()
	_ = u.release(cctx, coll, key, userID)
}

// UpdateProfile implements auth.UserStore: a new username is claimed
// before the user is written, and the old one released after. Two racing
// changes of one user may leave the loser's claim behind: it is stale (its
// user has another username) and is taken over by the next claim of the
// key once it is a minute old.
func (u *Users) UpdateProfile(ctx context.Context, id string, p auth.Profile) (auth.User, error) {
	cur, err := u.ByID(ctx, id)
	if err != nil {
		return auth.User{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	username := strings.TrimSpace(p.Username)
	oldKey, newKey := usernameKey(cur), auth.NormalizeUsername(username)
	if newKey != oldKey && newKey != "" {
		err := u.claim(ctx, u.usernames, newKey, id, usernameKey)
		switch {
		case mongo.IsDuplicateKeyError(err):
			return auth.User{}, auth.ErrUsernameTaken
		case err != nil:
			return auth.User{}, unavailable("claim username", err)
		}
	}
	set := bson.D{{Key: "first_name", Value: p.FirstName}, {Key: "last_name", Value: p.LastName}}
	update := bson.D{{Key: "$set", Value: set}}
	if newKey == "" { // the sparse unique index skips documents without the field
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "username", Value: ""}, {Key: "username_key", Value: ""}}})
	} else {
		update[0].Value = append(set, bson.E{Key: "username", Value: username}, bson.E{Key: "username_key", Value: newKey})
	}
	res, err := u.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	if err != nil || res.MatchedCount == 0 {
		if newKey != oldKey {
			u.releaseAfter(ctx, u.usernames, newKey, id)
		}
		switch {
		case mongo.IsDuplicateKeyError(err):
			return auth.User{}, auth.ErrUsernameTaken // a user written before the lookup collections existed
		case err != nil:
			return auth.User{}, unavailable("update profile", err)
		}
		return auth.User{}, auth.ErrUserNotFound
	}
	if newKey != oldKey {
		u.releaseAfter(ctx, u.usernames, oldKey, id)
	}
	cur.Username, cur.FirstName, cur.LastName = username, p.FirstName, p.LastName
	return cur, nil
}

// SetEmail implements auth.UserStore: the new address is claimed, the user
// switched only if it still has from, and the old address released after.
func (u *Users) SetEmail(ctx context.Context, id, from, to string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	oldKey, newKey := auth.EmailKey(from), auth.EmailKey(to)
	if newKey != oldKey {
		err := u.claim(ctx, u.emails, newKey, id, emailKey)
		switch {
		case mongo.IsDuplicateKeyError(err):
			return auth.ErrEmailTaken
		case err != nil:
			return unavailable("claim email", err)
		}
	}
	res, err := u.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "email", Value: from}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: to}, {Key: "email_verified", Value: true}}}})
	if err != nil || res.MatchedCount == 0 {
		if newKey != oldKey {
			u.releaseAfter(ctx, u.emails, newKey, id)
		}
		switch {
		case mongo.IsDuplicateKeyError(err):
			return auth.ErrEmailTaken
		case err != nil:
			return unavailable("update email", err)
		}
		return u.missOrConflict(ctx, id)
	}
	if newKey != oldKey {
		u.releaseAfter(ctx, u.emails, oldKey, id)
	}
	return nil
}

// missOrConflict says why a conditional update of user id matched nothing.
func (u *Users) missOrConflict(ctx context.Context, id string) error {
	if _, err := u.ByID(ctx, id); err != nil {
		return err
	}
	return auth.ErrConflict
}

// SetEmailVerified implements auth.UserStore.
func (u *Users) SetEmailVerified(ctx context.Context, id, email string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	res, err := u.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "email", Value: email}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "email_verified", Value: true}}}})
	switch {
	case err != nil:
		return unavailable("verify email", err)
	case res.MatchedCount == 0:
		return u.missOrConflict(ctx, id)
	}
	return nil
}

// Delete implements auth.UserStore: the user, then its claims. Should the
// second step fail, the claims are stale (their user is gone) and taken
// over by the next claim of their keys once a minute old.
func (u *Users) Delete(ctx context.Context, id string) error {
	cur, err := u.ByID(ctx, id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	res, err := u.users.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	switch {
	case err != nil:
		return unavailable("delete user", err)
	case res.DeletedCount == 0:
		return auth.ErrUserNotFound
	}
	errs := []error{u.release(ctx, u.emails, emailKey(cur), id), u.release(ctx, u.usernames, usernameKey(cur), id)}
	for _, i := range cur.Identities {
		errs = append(errs, u.release(ctx, u.identities, auth.IdentityKey(i.Provider, i.Subject), id))
	}
	// Its identities' revision claims: a range of _id, read by no lookup.
	_, rerr := u.revisions.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: id + ":"}, {Key: "$lt", Value: id + ";"}}}})
	errs = append(errs, rerr)
	if err := errors.Join(errs...); err != nil {
		return unavailable("release the deleted user's email, username and identities", err)
	}
	return nil
}

// ByIdentity implements auth.UserStore: the claim, then the user, who must
// still hold the identity (a claim left behind by an unlink that stopped
// midway signs no one in).
func (u *Users) ByIdentity(ctx context.Context, provider, subject string) (auth.User, error) {
	key := auth.IdentityKey(provider, subject)
	usr, err := u.byKey(ctx, u.identities, key)
	if err == nil && !hasIdentity(usr, key) {
		return auth.User{}, auth.ErrUserNotFound
	}
	return usr, err
}

// identityRetries bounds how often a change of a user's identities is
// computed again after losing to a concurrent change of the same user.
const identityRetries = 8

// revisionDoc claims a revision of a user's identities: _id is
// "<user id>:<revision>".
type revisionDoc struct {
	ID        string    `bson:"_id"`
	CreatedAt time.Time `bson:"created_at"`
}

func revisionKey(userID string, rev int64) string { return userID + ":" + strconv.FormatInt(rev, 10) }

// setIdentities writes ids as cur's identities if they are still those
// cur was read with: false when a concurrent change won, ErrUserNotFound
// when the user is gone.
//
// FerretDB v1.24 applies no filtered update atomically, so a revision
// compared in the update's filter would let two racing changes through
// (two unlinks could leave a user no way to sign in). What it does apply
// atomically is an insert against the unique _id: a change first claims
// the revision it makes (revisionDoc); of racing changes computed from one
// revision, one inserts the claim and the others get a duplicate key and
// compute again. A claim whose change stopped before its write blocks the
// next revision number: once it is older than any change can run
// (staleClaim), the next change skips to the number after it.
func (u *Users) setIdentities(ctx context.Context, cur userDoc, ids []identityDoc) (bool, error) {
	next := cur.IdentitiesRev + 1
	for skips := 0; ; skips++ {
		_, err := u.revisions.InsertOne(ctx, revisionDoc{ID: revisionKey(cur.ID, next), CreatedAt: time.Now().UTC()})
		if err == nil {
			break
		}
		if !mongo.IsDuplicateKeyError(err) {
			return false, unavailable("claim identities revision", err)
		}
		var old revisionDoc
		switch err := u.revisions.FindOne(ctx, bson.D{{Key: "_id", Value: revisionKey(cur.ID, next)}}).Decode(&old); {
		case errors.Is(err, mongo.ErrNoDocuments):
			return false, nil
		case err != nil:
			return false, unavailable("read identities revision", err)
		case skips >= identityRetries || time.Since(old.CreatedAt) < staleClaim:
			return false, nil // a concurrent change won (or is still writing)
		}
		next++ // claimed long ago by a change that never wrote it
	}
	res, err := u.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: cur.ID}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "identities", Value: ids}, {Key: "identities_rev", Value: next}}}})
	switch {
	case err != nil:
		return false, unavailable("update identities", err)
	case res.MatchedCount == 0:
		return false, auth.ErrUserNotFound
	}
	return true, nil
}

func (u *Users) userDoc(ctx context.Context, id string) (userDoc, error) {
	var d userDoc
	err := u.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return userDoc{}, auth.ErrUserNotFound
	case err != nil:
		return userDoc{}, unavailable("find user", err)
	}
	return d, nil
}

// AddIdentity implements auth.UserStore: the identity is claimed, then
// added to the user's list.
func (u *Users) AddIdentity(ctx context.Context, userID string, id auth.Identity) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	key := auth.IdentityKey(id.Provider, id.Subject)
	claimed := false
	for range identityRetries {
		cur, err := u.userDoc(ctx, userID)
		if err != nil {
			if claimed {
				u.releaseAfter(ctx, u.identities, key, userID)
			}
			return err
		}
		if hasIdentity(cur.user(), key) {
			return nil
		}
		if !claimed {
			err := u.claim(ctx, u.identities, key, userID, identityKey(key))
			switch {
			case mongo.IsDuplicateKeyError(err):
				return auth.ErrIdentityTaken
			case err != nil:
				return unavailable("claim identity", err)
			}
			claimed = true
		}
		ok, err := u.setIdentities(ctx, cur, append(cur.Identities, identityDocs([]auth.Identity{id})...))
		if ok || err != nil {
			if err != nil {
				u.releaseAfter(ctx, u.identities, key, userID)
			}
			return err
		}
	}
	u.releaseAfter(ctx, u.identities, key, userID)
	return auth.ErrConflict
}

// RemoveIdentity implements auth.UserStore: the identity leaves the
// user's list, then its claim is released.
func (u *Users) RemoveIdentity(ctx context.Context, userID, provider, subject string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	key := auth.IdentityKey(provider, subject)
	for range identityRetries {
		cur, err := u.userDoc(ctx, userID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(cur.Identities, func(d identityDoc) bool { return d.Provider == provider && d.Subject == subject })
		switch {
		case i < 0:
			return auth.ErrIdentityNotFound
		case cur.PasswordHash == "" && len(cur.Identities) == 1:
			return auth.ErrLastSignInMethod
		}
		ok, err := u.setIdentities(ctx, cur, slices.Delete(slices.Clone(cur.Identities), i, i+1))
		if err != nil {
			return err
		}
		if ok {
			u.releaseAfter(ctx, u.identities, key, userID)
			return nil
		}
	}
	return auth.ErrConflict
}

// Update implements auth.UserStore.
func (u *Users) Update(ctx context.Context, id string, up auth.UserUpdate) (auth.User, error) {
	set := bson.D{}
	if up.Roles != nil {
		roles := *up.Roles
		if roles == nil {
			roles = []string{}
		}
		set = append(set, bson.E{Key: "roles", Value: roles})
	}
	if up.Disabled != nil {
		set = append(set, bson.E{Key: "disabled", Value: *up.Disabled})
	}
	if up.EmailVerified != nil {
		set = append(set, bson.E{Key: "email_verified", Value: *up.EmailVerified})
	}
	if len(set) > 0 {
		uctx, cancel := context.WithTimeout(ctx, OpTimeout)
		defer cancel()
		res, err := u.users.UpdateOne(uctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
		switch {
		case err != nil:
			return auth.User{}, unavailable("update user", err)
		case res.MatchedCount == 0:
			return auth.User{}, auth.ErrUserNotFound
		}
	}
	return u.ByID(ctx, id)
}

// List implements auth.UserStore. The query matches by substring
// (a quoted regular expression) on the stored email and username key: a
// scan on FerretDB, which pushes down only _id look-ups; an administrator's
// search, not a hot path.
func (u *Users) List(ctx context.Context, q auth.UserQuery) ([]auth.User, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	filter := bson.D{}
	if q.After != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.After}}})
	}
	if q.Query != "" {
		re := bson.D{{Key: "$regex", Value: regexp.QuoteMeta(q.Query)}}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "_id", Value: q.Query}},
			bson.D{{Key: "email", Value: re}},
			bson.D{{Key: "username_key", Value: re}},
		}})
	}
	return findAll(ctx, u.users, "list users", filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(q.Limit)), userDoc.user)
}
