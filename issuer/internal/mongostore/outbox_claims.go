package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Claims of the outbox: what was given to it to deliver, by key, so that a
// message with a key already delivered (a revocation of a session or token
// already revoked) is not sent again. They are kept in the collection named
// like the outbox plus "_claims", one document per key: _id the key, the
// claiming owner, until when it holds, and whether it is settled (the
// message was delivered or queued). The unique _id makes racing claims of a
// key yield one holder, on FerretDB too (see Lease).
type claimDoc struct {
	ID      string    `bson:"_id"`
	Owner   string    `bson:"owner"`
	Until   time.Time `bson:"until"`
	Settled bool      `bson:"settled"`
}

func (o *Outbox) claimsColl() *mongo.Collection {
	return o.coll.Database().Collection(o.coll.Name() + "_claims")
}

// Claim claims keys for owner until until, judged at now. It answers the
// keys owner now holds (it claimed them, or held them already) and those
// another owner settled; the other keys are claimed by another owner that
// has not settled them yet. A claim that ran out (its owner died before it
// settled, or a settled claim's time passed) is taken over.
func (o *Outbox) Claim(ctx context.Context, owner string, now, until time.Time, keys ...string) (held, settled []string, err error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	coll := o.claimsColl()
	now, until = now.UTC(), until.UTC()
	docs := make([]any, len(keys))
	for i, k := range keys {
		docs[i] = claimDoc{ID: k, Owner: owner, Until: until}
	}
	taken := map[int]bool{} // indexes of keys claimed before
	_, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	switch {
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil:
		for _, we := range bwe.WriteErrors {
			if !mongo.IsDuplicateKeyError(we) {
				return nil, nil, unavailable("outbox claim", err)
			}
			taken[we.Index] = true
		}
	case err != nil:
		return nil, nil, unavailable("outbox claim", err)
	}
	var clash []string
	for i, k := range keys {
		if taken[i] {
			clash = append(clash, k)
		} else {
			held = append(held, k)
		}
	}
	if len(clash) == 0 {
		return held, nil, nil
	}
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: clash}}}})
	if err != nil {
		return nil, nil, unavailable("outbox claim", err)
	}
	var found []claimDoc
	if err := cur.All(ctx, &found); err != nil {
		return nil, nil, unavailable("outbox claim", err)
	}
	for _, d := range found {
		switch {
		case d.Owner == owner:
			held = append(held, d.ID)
		case !d.Until.Before(now) && d.Settled:
			settled = append(settled, d.ID)
		case !d.Until.Before(now):
			// Claimed by another owner, not settled yet: pending.
		default:
			// Ran out: take it over. Of racing owners, the one whose insert
			// lands holds it; the others see it pending.
			_, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "owner", Value: d.Owner},
				{Key: "until", Value: d.Until}})
			if err != nil {
				return nil, nil, unavailable("outbox claim", err)
			}
			_, err = coll.InsertOne(ctx, claimDoc{ID: d.ID, Owner: owner, Until: until})
			switch {
			case err == nil:
				held = append(held, d.ID)
			case !mongo.IsDuplicateKeyError(err):
				return nil, nil, unavailable("outbox claim", err)
			}
		}
	}
	// A key whose claim was deleted between the insert and the read
	// (unclaimed meanwhile) is neither: the caller asks again.
	return held, settled, nil
}

// Settle marks owner's claims of keys settled, holding until until.
func (o *Outbox) Settle(ctx context.Context, owner string, until time.Time, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := o.claimsColl().UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}, {Key: "owner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "settled", Value: true}, {Key: "until", Value: until.UTC()}}}})
	if err != nil {
		return unavailable("outbox settle claims", err)
	}
	return nil
}

// Unclaim deletes owner's claims of keys: they may be claimed again.
func (o *Outbox) Unclaim(ctx context.Context, owner string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := o.claimsColl().DeleteMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}, {Key: "owner", Value: owner}})
	if err != nil {
		return unavailable("outbox unclaim", err)
	}
	return nil
}

// ExpireClaims deletes the claims that ran out before now.
func (o *Outbox) ExpireClaims(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	_, err := o.claimsColl().DeleteMany(ctx, bson.D{{Key: "until", Value: bson.D{{Key: "$lt", Value: now.UTC()}}}})
	if err != nil {
		return unavailable("outbox expire claims", err)
	}
	return nil
}
