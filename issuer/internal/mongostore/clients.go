package mongostore

import (
	"context"
	"errors"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ClientsCollection is the MongoDB collection of service accounts.
const ClientsCollection = "clients"

// Clients implements auth.ClientStore: one document per service account,
// _id = the client id, so the look-up of every token request and
// introspection call is by _id. Only the secret's SHA-256 is stored.
type Clients struct {
	coll *mongo.Collection
}

var _ auth.ClientStore = (*Clients)(nil)

type clientDoc struct {
	ID         string    `bson:"_id"`
	Name       string    `bson:"name"`
	Roles      []string  `bson:"roles"`
	SecretHash string    `bson:"secret_sha256"`
	CreatedAt  time.Time `bson:"created_at"`
	CreatedBy  string    `bson:"created_by,omitempty"`
}

// NewClients returns the store.
func NewClients(db *mongo.Database) *Clients {
	return &Clients{coll: db.Collection(ClientsCollection)}
}

// Create implements auth.ClientStore.
func (c *Clients) Create(ctx context.Context, cl auth.Client) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	roles := cl.Roles
	if roles == nil {
		roles = []string{}
	}
	_, err := c.coll.InsertOne(ctx, clientDoc{ID: cl.ID, Name: cl.Name, Roles: roles, SecretHash: cl.SecretHash,
		CreatedAt: cl.CreatedAt.UTC().Truncate(time.Millisecond), CreatedBy: cl.CreatedBy})
	switch {
	case mongo.IsDuplicateKeyError(err):
		return auth.ErrConflict
	case err != nil:
		return unavailable("insert client", err)
	}
	return nil
}

func (d clientDoc) client() auth.Client {
	return auth.Client{ID: d.ID, Name: d.Name, Roles: d.Roles, SecretHash: d.SecretHash,
		CreatedAt: d.CreatedAt.UTC(), CreatedBy: d.CreatedBy}
}

// ByID implements auth.ClientStore.
func (c *Clients) ByID(ctx context.Context, id string) (auth.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	var d clientDoc
	err := c.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return auth.Client{}, auth.ErrClientNotFound
	case err != nil:
		return auth.Client{}, unavailable("find client", err)
	}
	return d.client(), nil
}

// List implements auth.ClientStore.
func (c *Clients) List(ctx context.Context) ([]auth.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	return findAll(ctx, c.coll, "list clients", bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), clientDoc.client)
}

// Delete implements auth.ClientStore.
func (c *Clients) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	res, err := c.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	switch {
	case err != nil:
		return unavailable("delete client", err)
	case res.DeletedCount == 0:
		return auth.ErrClientNotFound
	}
	return nil
}
