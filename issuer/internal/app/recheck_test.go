package app_test

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A user disabled in MongoDB is refused at a refresh once the session's copy
// of the user is older than JOTGUARD_USER_RECHECK (403 account_disabled),
// and refreshes until then answer 200, never an error.
func TestDisabledUserRefusedAfterRecheck(t *testing.T) {
	s := startIssuer(t, map[string]string{"JOTGUARD_USER_RECHECK": "1s"})
	email := s.register(pw)
	_, rt := s.login(email, pw)

	mc, err := mongo.Connect(options.Client().ApplyURI(s.cfg.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mc.Disconnect(t.Context()) }()
	res, err := mc.Database(s.cfg.MongoDB).Collection("users").UpdateOne(t.Context(),
		bson.M{"email": email}, bson.M{"$set": bson.M{"disabled": true}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("disable the user: %v, %+v", err, res)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.refresh(rt)
		if r.StatusCode == 403 {
			if r.code() != "account_disabled" {
				t.Fatalf("refresh of a disabled user: %d %s, want account_disabled", r.StatusCode, r.body)
			}
			break
		}
		if r.StatusCode != 200 || time.Now().After(deadline) {
			t.Fatalf("refresh of a disabled user: %d %s, want 200 within the recheck window, then 403", r.StatusCode, r.body)
		}
		rt = r.cookie("refresh_token").Value
		time.Sleep(200 * time.Millisecond)
	}
	// Login checks the user itself, at once.
	if r := s.do("POST", "/login", `{"email":"`+email+`","password":"`+pw+`"}`); r.StatusCode != 403 {
		t.Fatalf("login of a disabled user: %d %s", r.StatusCode, r.body)
	}
}
