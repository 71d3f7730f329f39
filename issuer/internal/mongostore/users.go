package mongostore

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names.
const (
	UsersCollection     = "users"
	EmailsCollection    = "user_emails"
	UsernamesCollection = "user_usernames"
)

// Users implements auth.UserStore. Users are keyed by id, and two small
// collections keyed by the normalized email and username make uniqueness
// atomic and lookups cheap (by _id).
type Users struct {
	users, emails, usernames *mongo.Collection
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
		usernames: db.Collection(UsernamesCollection)}
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
	doc := userDoc{ID: usr.ID, Email: usr.Email, Username: usr.Username, UsernameKey: ukey,
		FirstName: usr.FirstName, LastName: usr.LastName, PasswordHash: usr.PasswordHash,
		EmailVerified: usr.EmailVerified, Roles: usr.Roles, Disabled: usr.Disabled, CreatedAt: usr.CreatedAt}
	if _, err := u.users.InsertOne(ctx, doc); err != nil {
		if ukey != "" {
			undo(u.usernames, ukey)
		}
		undo(u.emails, ekey)
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
	var d userDoc
	err := u.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return auth.User{}, auth.ErrUserNotFound
	case err != nil:
		return auth.User{}, unavailable("find user", err)
	}
	return d.user(), nil
}

func (d userDoc) user() auth.User {
	return auth.User{ID: d.ID, Email: d.Email, Username: d.Username, FirstName: d.FirstName,
		LastName: d.LastName, PasswordHash: d.PasswordHash, EmailVerified: d.EmailVerified,
		Roles: d.Roles, Disabled: d.Disabled, CreatedAt: d.CreatedAt.UTC()}
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
	if err := errors.Join(u.release(ctx, u.emails, emailKey(cur), id),
		u.release(ctx, u.usernames, usernameKey(cur), id)); err != nil {
		return unavailable("release the deleted user's email and username", err)
	}
	return nil
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
