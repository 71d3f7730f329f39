package mongostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// LinkTokensCollection is the MongoDB collection of the tokens of mailed
// links.
const LinkTokensCollection = "link_tokens"

// LinkTokens implements auth.LinkTokens: one document per token, _id = the
// hex SHA-256 of the token (the token itself is never stored), so every
// look-up is by _id, which FerretDB pushes down. Single use rests on a
// delete by _id: of racing deletes of one document exactly one reports it
// deleted (FerretDB's findOneAndUpdate and findOneAndDelete are not
// atomic; a plain delete by _id is).
type LinkTokens struct {
	coll *mongo.Collection
}

var _ auth.LinkTokens = (*LinkTokens)(nil)

type linkDoc struct {
	ID        string    `bson:"_id"`
	Purpose   string    `bson:"purpose"`
	UserID    string    `bson:"user_id,omitempty"`
	Email     string    `bson:"email,omitempty"`
	From      string    `bson:"from,omitempty"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewLinkTokens returns the store and creates its index on expires_at: a
// TTL index where the server has them (MongoDB deletes expired tokens
// itself), a plain one otherwise (FerretDB); DeleteExpired sweeps either way.
func NewLinkTokens(ctx context.Context, db *mongo.Database) (*LinkTokens, error) {
	l := &LinkTokens{coll: db.Collection(LinkTokensCollection)}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ensureExpiryIndex(ctx, l.coll); err != nil {
		return nil, unavailable("create link token index", err)
	}
	return l, nil
}

func linkID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Create implements auth.LinkTokens; a token stored already is ErrConflict.
func (l *LinkTokens) Create(ctx context.Context, token string, t auth.LinkToken) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := l.coll.InsertOne(ctx, linkDoc{ID: linkID(token), Purpose: t.Purpose, UserID: t.UserID, Email: t.Email,
		From: t.From, ExpiresAt: t.ExpiresAt.UTC().Truncate(time.Millisecond)})
	switch {
	case mongo.IsDuplicateKeyError(err):
		return auth.ErrConflict
	case err != nil:
		return unavailable("insert link token", err)
	}
	return nil
}

// find reads the token's document; ok is false when there is none.
func (l *LinkTokens) find(ctx context.Context, id string) (linkDoc, bool, error) {
	var d linkDoc
	err := l.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return linkDoc{}, false, nil
	case err != nil:
		return linkDoc{}, false, unavailable("find link token", err)
	}
	return d, true, nil
}

func (d linkDoc) token() auth.LinkToken {
	return auth.LinkToken{Purpose: d.Purpose, UserID: d.UserID, Email: d.Email, From: d.From, ExpiresAt: d.ExpiresAt.UTC()}
}

// Peek implements auth.LinkTokens.
func (l *LinkTokens) Peek(ctx context.Context, token, purpose string, now time.Time) (auth.LinkToken, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	d, ok, err := l.find(ctx, linkID(token))
	switch {
	case err != nil:
		return auth.LinkToken{}, err
	case !ok || d.Purpose != purpose || !now.Before(d.ExpiresAt):
		return auth.LinkToken{}, auth.ErrInvalidLinkToken
	}
	return d.token(), nil
}

// Consume implements auth.LinkTokens: a read by _id, then a delete by _id
// whose count decides which of racing consumers won.
func (l *LinkTokens) Consume(ctx context.Context, token, purpose string, now time.Time) (auth.LinkToken, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	id := linkID(token)
	d, ok, err := l.find(ctx, id)
	switch {
	case err != nil:
		return auth.LinkToken{}, err
	case !ok || d.Purpose != purpose:
		return auth.LinkToken{}, auth.ErrInvalidLinkToken
	}
	res, err := l.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	switch {
	case err != nil:
		return auth.LinkToken{}, unavailable("delete link token", err)
	case res.DeletedCount != 1 || !now.Before(d.ExpiresAt): // another consumer won, or it expired
		return auth.LinkToken{}, auth.ErrInvalidLinkToken
	}
	return d.token(), nil
}

// DeleteExpired implements auth.LinkTokens.
func (l *LinkTokens) DeleteExpired(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := l.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now.UTC()}}}})
	if err != nil {
		return unavailable("delete expired link tokens", err)
	}
	return nil
}
