package revocation

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jotguard/jotguard/sdk"
)

// A batch is many revocation events under one signature: what the issuer
// writes to the revocation topic, so that a consumer checks one signature
// per batch instead of one per event. Its format, version 1
// (docs/tokens-and-events.md has a worked example):
//
//	signed part:
//	  "JGRB"               magic
//	  0x01                 format version
//	  str alg, str kid     the signing key: a JWS algorithm and a kid of the issuer's JWKS
//	  str iss              the issuer of every event in the batch
//	  uvarint n, n × str   the audiences (1 to maxBatchAudiences)
//	  str id               the batch id, for logs
//	  uvarint iat          when the batch was signed, Unix milliseconds
//	  uvarint count        the events, 1 to MaxBatchEvents
//	  count × event:
//	    byte kind          's' one session, 'u' every session of a user, 't' one token
//	    varint at          event_timestamp − iat in milliseconds (zigzag)
//	    str id             the event id (a SET's jti)
//	    str sub            the user ("" only for a token event)
//	    str target         the session id ('s'), the token's jti ('t'), "" ('u')
//	    str reason, str initiator, str txn
//	signature              JWS signature of the signed part by alg (ES256: r‖s, 64 bytes)
//	uint16                 the signature's length, big-endian
//
// str is a uvarint length and that many bytes of UTF-8. Every varint is in
// its shortest form and nothing follows the last event, so a batch has one
// reading. The signature covers the format version, the key's alg and kid,
// the issuer, the audiences and every event: a consumer checks it before it
// reads an event, and rejects the batch whole if it fails or if any part
// of the batch is malformed.
const (
	BatchMagic   = "JGRB"
	BatchVersion = 1
	// BatchContentType is the Kafka record header "content-type" of a batch.
	BatchContentType = "application/vnd.jotguard.revocation-batch"
	// MaxBatchSize is the largest batch a BatchVerifier reads, in bytes.
	MaxBatchSize = 1 << 20
	// MaxBatchEvents is the most events a batch may hold.
	MaxBatchEvents = 16384
)

const (
	maxBatchAudiences = 64
	batchTrailer      = 2 // the signature's length
)

// Kinds of a batch event, as encoded.
const (
	batchSession = 's'
	batchUser    = 'u'
	batchToken   = 't'
)

// Batch is a signed record of revocation events.
type Batch struct {
	ID       string    // batch id, for logs
	Issuer   string    // iss of every event
	Audience []string  // like a SET's aud
	IssuedAt time.Time // when it was signed, millisecond precision
	// Events, in order. Decoded, each has the batch's Issuer and IssuedAt.
	Events []Event
	KID    string // the key that signed it, set by BatchVerifier
}

// BatchKey signs batches: the JWS algorithm and kid of a key in the issuer's
// JWKS, and a function that signs bytes with it, giving the signature in JWS
// form (ES256: r‖s, 64 bytes).
type BatchKey struct {
	Alg, KID string
	Sign     func(signed []byte) ([]byte, error)
}

// IsBatch reports whether a record value is a batch (of any version), not
// a SET.
func IsBatch(value []byte) bool {
	return len(value) > len(BatchMagic) && string(value[:len(BatchMagic)]) == BatchMagic
}

// ErrBatchTooLarge is what SealBatch says of events that do not fit in one
// batch; SplitBatches cuts them to size.
var ErrBatchTooLarge = errors.New("revocation: batch too large")

// SealBatch encodes b and signs it with k. Its events must have an ID and
// a time, exactly one scope (as Event says), and b's Issuer or none.
func SealBatch(b Batch, k BatchKey) ([]byte, error) {
	if err := checkBatch(b, k); err != nil {
		return nil, err
	}
	return signBatch(encodeBatch(b, k), k)
}

// checkBatch says whether SealBatch can seal b with k.
func checkBatch(b Batch, k BatchKey) error {
	switch {
	case b.Issuer == "" || b.ID == "":
		return errors.New("revocation: a batch needs an issuer and an id")
	case len(b.Audience) == 0 || len(b.Audience) > maxBatchAudiences:
		return fmt.Errorf("revocation: a batch needs 1 to %d audiences", maxBatchAudiences)
	case len(b.Events) == 0:
		return errors.New("revocation: a batch needs an event")
	case len(b.Events) > MaxBatchEvents:
		return fmt.Errorf("%w: %d events, the limit is %d", ErrBatchTooLarge, len(b.Events), MaxBatchEvents)
	case k.KID == "" || k.Sign == nil || !allowedAlg(k.Alg):
		return fmt.Errorf("revocation: cannot sign a batch with alg %q, kid %q", k.Alg, k.KID)
	case b.IssuedAt.UnixMilli() <= 0:
		return errors.New("revocation: a batch needs its signing time")
	}
	size := batchHeadSize(b, k)
	for i, e := range b.Events {
		_, _, err := batchScope(e)
		if err == nil && e.Issuer != "" && e.Issuer != b.Issuer {
			err = fmt.Errorf("issuer %q in a batch of %q", e.Issuer, b.Issuer)
		}
		if err == nil && (e.ID == "" || e.At.UnixMilli() <= 0) {
			err = errors.New("an event needs an id and a time")
		}
		if err != nil {
			return fmt.Errorf("revocation: batch event %d: %w", i, err)
		}
		size += eventSize(e)
	}
	if size+batchTrailer+maxSignature > MaxBatchSize {
		return fmt.Errorf("%w: %d bytes", ErrBatchTooLarge, size)
	}
	return nil
}

// maxSignature bounds a signature: RS4096's is 512 bytes.
const maxSignature = 1024

// encodeBatch is b's signed part, unchecked.
func encodeBatch(b Batch, k BatchKey) []byte {
	size := batchHeadSize(b, k)
	for _, e := range b.Events {
		size += eventSize(e)
	}
	iat := b.IssuedAt.UnixMilli()
	out := make([]byte, 0, size+batchTrailer+maxSignature)
	out = append(out, BatchMagic...)
	out = append(out, BatchVersion)
	out = appendStr(out, k.Alg)
	out = appendStr(out, k.KID)
	out = appendStr(out, b.Issuer)
	out = binary.AppendUvarint(out, uint64(len(b.Audience)))
	for _, a := range b.Audience {
		out = appendStr(out, a)
	}
	out = appendStr(out, b.ID)
	out = binary.AppendUvarint(out, uint64(iat))
	out = binary.AppendUvarint(out, uint64(len(b.Events)))
	for _, e := range b.Events {
		kind, target, _ := batchScope(e)
		out = append(out, kind)
		out = binary.AppendVarint(out, e.At.UnixMilli()-iat)
		for _, s := range [...]string{e.ID, e.Subject, target, e.Reason, e.Initiator, e.TxnID} {
			out = appendStr(out, s)
		}
	}
	return out
}

// signBatch appends k's signature of signed, and its length.
func signBatch(signed []byte, k BatchKey) ([]byte, error) {
	sig, err := k.Sign(signed)
	if err != nil {
		return nil, fmt.Errorf("revocation: sign batch: %w", err)
	}
	if len(sig) == 0 || len(sig) > maxSignature {
		return nil, fmt.Errorf("revocation: a signature of %d bytes", len(sig))
	}
	out := append(signed, sig...)
	return binary.BigEndian.AppendUint16(out, uint16(len(sig))), nil
}

// batchScope is e's kind and target, as a batch encodes them; err says
// why a batch may not hold e (the kind and target are still e's best).
func batchScope(e Event) (kind byte, target string, err error) {
	switch {
	case e.TokenID != "":
		kind, target = batchToken, e.TokenID
		if e.SessionID != "" {
			err = errors.New("both a token and a session")
		}
	case e.SessionID != "":
		kind, target = batchSession, e.SessionID
		if e.Subject == "" {
			err = errors.New("a session event needs its user")
		}
	case e.Subject != "":
		kind = batchUser
	default:
		err = errors.New("no session, user or token")
	}
	return kind, target, err
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func strSize(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// batchHeadSize is the size of a batch's signed part before its events.
func batchHeadSize(b Batch, k BatchKey) int {
	n := len(BatchMagic) + 1 + strSize(k.Alg) + strSize(k.KID) + strSize(b.Issuer) +
		uvarintLen(uint64(len(b.Audience))) + strSize(b.ID) + binary.MaxVarintLen64 + binary.MaxVarintLen32
	for _, a := range b.Audience {
		n += strSize(a)
	}
	return n
}

// eventSize is at most what e takes in a batch.
func eventSize(e Event) int {
	return 1 + binary.MaxVarintLen64 + strSize(e.ID) + strSize(e.Subject) + strSize(e.SessionID+e.TokenID) +
		strSize(e.Reason) + strSize(e.Initiator) + strSize(e.TxnID)
}

// SplitBatches cuts events, in order, into runs that each fit in a batch
// of at most maxBytes (and MaxBatchEvents events). An event too large for
// maxBytes gets a run of its own: SealBatch says whether it fits at all.
func SplitBatches(events []Event, maxBytes int) [][]Event {
	const head = 1024 // alg, kid, iss, audiences, id, signature: a generous bound
	var out [][]Event
	start, size := 0, head
	for i, e := range events {
		n := eventSize(e)
		if i > start && (size+n > maxBytes || i-start == MaxBatchEvents) {
			out = append(out, events[start:i])
			start, size = i, head
		}
		size += n
	}
	if start < len(events) {
		out = append(out, events[start:])
	}
	return out
}

// BatchVerifier checks signed batches, as SETVerifier checks SETs.
type BatchVerifier struct {
	keys     sdk.KeySource
	algs     []string
	issuer   string
	audience []string
}

// NewBatchVerifier returns a BatchVerifier that trusts what trust says, as
// NewSETVerifier does: a batch must be signed by one of its keys with one
// of its algorithms (never HS* or none), come from its issuer (when set)
// and name one of its audiences (when it has any).
func NewBatchVerifier(trust sdk.EventTrust) *BatchVerifier {
	return &BatchVerifier{keys: trust.Keys, algs: trustedAlgs(trust), issuer: trust.Issuer,
		audience: slices.Clone(trust.Audience)}
}

// Verify checks raw, a batch, and returns it. It checks the signature
// before it reads an event, and rejects the whole batch when any part of
// it is wrong. Its errors wrap ErrBadSignature (size, magic, version, alg,
// unknown key, signature) or ErrBadEvent (a signed batch from another
// issuer, for other audiences, or malformed); when the key is not known
// (yet), the cause wraps sdk.ErrUnknownKey or sdk.ErrNotReady.
//
// A batch Verify accepted once may be presented again (Kafka redelivers,
// a relay retries, anyone may copy a record): that is harmless, since each
// event carries its own time, after which a consumer forgets it, and
// applying an event twice changes nothing.
func (v *BatchVerifier) Verify(ctx context.Context, raw []byte) (Batch, error) {
	bad := func(format string, args ...any) (Batch, error) {
		return Batch{}, fmt.Errorf("%w: batch: %s", ErrBadSignature, fmt.Sprintf(format, args...))
	}
	n := len(raw)
	switch {
	case n > MaxBatchSize:
		return bad("%d bytes, the limit is %d", n, MaxBatchSize)
	case !IsBatch(raw) || n < len(BatchMagic)+1+batchTrailer:
		return bad("not a batch")
	case raw[len(BatchMagic)] != BatchVersion:
		return bad("format version %d; this consumer reads version %d", raw[len(BatchMagic)], BatchVersion)
	}
	sigLen := int(binary.BigEndian.Uint16(raw[n-batchTrailer:]))
	if sigLen == 0 || sigLen > maxSignature || sigLen > n-batchTrailer-len(BatchMagic)-1 {
		return bad("signature length %d in %d bytes", sigLen, n)
	}
	signed := raw[:n-batchTrailer-sigLen]
	sig := raw[len(signed) : n-batchTrailer]
	// One copy: the events' strings are pieces of it.
	r := batchReader{s: string(signed), off: len(BatchMagic) + 1}
	alg, kid := r.str(), r.str()
	if r.err != nil {
		return bad("%v", r.err)
	}
	if !slices.Contains(v.algs, alg) || kid == "" {
		return bad("alg %.20q, kid %.80q", alg, kid)
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return bad("alg %q unknown", alg)
	}
	if v.keys == nil {
		return bad("no key source")
	}
	key, err := v.keys.Key(ctx, &jwt.Token{Method: method, Header: map[string]any{"alg": alg, "kid": kid}})
	if err != nil {
		return Batch{}, fmt.Errorf("%w: batch: %w", ErrBadSignature, err)
	}
	if err := method.Verify(r.s, sig, key); err != nil {
		return bad("signature: %v", err)
	}
	b, err := r.body(kid)
	if err != nil {
		return Batch{}, fmt.Errorf("%w: batch %.80q: %w", ErrBadEvent, b.ID, err)
	}
	if v.issuer != "" && b.Issuer != v.issuer {
		return Batch{}, fmt.Errorf("%w: batch %.80q: issuer %.80q, want %q", ErrBadEvent, b.ID, b.Issuer, v.issuer)
	}
	if len(v.audience) > 0 && !slices.ContainsFunc(b.Audience, func(a string) bool { return slices.Contains(v.audience, a) }) {
		return Batch{}, fmt.Errorf("%w: batch %.80q: audiences %.200q, want one of %q", ErrBadEvent, b.ID, b.Audience, v.audience)
	}
	return b, nil
}

// batchReader reads a batch's signed part, remembering the first error.
type batchReader struct {
	s   string
	off int
	err error
}

func (r *batchReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

// uvarint reads a varint in its shortest form.
func (r *batchReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if r.off >= len(r.s) {
			r.fail("truncated")
			return 0
		}
		c := r.s[r.off]
		r.off++
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflow
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				r.fail("a varint not in its shortest form")
				return 0
			}
			return x
		}
	}
	r.fail("varint overflows 64 bits")
	return 0
}

func (r *batchReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a uvarint between lo and hi.
func (r *batchReader) count(what string, lo, hi int) int {
	n := r.uvarint()
	if r.err == nil && (n < uint64(lo) || n > uint64(hi)) {
		r.fail("%d %s, want %d to %d", n, what, lo, hi)
		return 0
	}
	return int(n)
}

// str reads a str: a piece of r.s, valid UTF-8.
func (r *batchReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.off) {
		r.fail("a string of %d bytes, %d left", n, len(r.s)-r.off)
		return ""
	}
	s := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	if !utf8.ValidString(s) {
		r.fail("a string that is not UTF-8")
		return ""
	}
	return s
}

// body reads what follows alg and kid. It returns what it could read on
// error, for the message.
func (r *batchReader) body(kid string) (Batch, error) {
	b := Batch{KID: kid, Issuer: r.str()}
	b.Audience = make([]string, r.count("audiences", 1, maxBatchAudiences))
	for i := range b.Audience {
		b.Audience[i] = r.str()
	}
	b.ID = r.str()
	iat := r.uvarint()
	const maxMillis = 1e14 // the year 5138, as Timestamp allows
	if r.err == nil && (iat == 0 || iat > maxMillis) {
		r.fail("iat %d", iat)
	}
	b.IssuedAt = time.UnixMilli(int64(iat)).UTC()
	count := r.count("events", 1, MaxBatchEvents)
	if r.err == nil && count > (len(r.s)-r.off)/8 { // the smallest event takes 8 bytes
		r.fail("%d events in %d bytes", count, len(r.s)-r.off)
	}
	if r.err != nil {
		return b, r.err
	}
	if b.Issuer == "" || b.ID == "" {
		return b, errors.New("a batch needs an issuer and an id")
	}
	b.Events = make([]Event, count)
	for i := range b.Events {
		e := &b.Events[i]
		kind := byte(0)
		if r.off < len(r.s) {
			kind = r.s[r.off]
			r.off++
		}
		delta := r.varint()
		e.ID, e.Subject = r.str(), r.str()
		target := r.str()
		e.Reason, e.Initiator, e.TxnID = r.str(), r.str(), r.str()
		if r.err != nil {
			return b, fmt.Errorf("event %d: %w", i, r.err)
		}
		at := int64(iat) + delta
		if delta < -maxMillis || delta > maxMillis || at <= 0 || at > maxMillis {
			return b, fmt.Errorf("event %d: time %d ms", i, at)
		}
		e.Issuer, e.IssuedAt, e.At = b.Issuer, b.IssuedAt, time.UnixMilli(at).UTC()
		var ok bool
		switch kind {
		case batchSession:
			e.SessionID, ok = target, e.Subject != "" && target != ""
		case batchUser:
			ok = e.Subject != "" && target == ""
		case batchToken:
			e.TokenID, ok = target, target != ""
		}
		if !ok || e.ID == "" {
			return b, fmt.Errorf("event %d: kind %q with id %.80q, sub %.80q, target %.80q: %w",
				i, kind, e.ID, e.Subject, target, errBatchScope)
		}
	}
	if r.off != len(r.s) {
		return b, fmt.Errorf("%d bytes after the last event", len(r.s)-r.off)
	}
	return b, nil
}

var errBatchScope = errors.New("an event needs an id and one session, user or token")

// trustedAlgs is the algorithms of trust, default sdk.DefaultAlgorithms,
// never none or HS*.
func trustedAlgs(trust sdk.EventTrust) []string {
	algs := trust.Algorithms
	if len(algs) == 0 {
		algs = sdk.DefaultAlgorithms
	}
	return slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return !allowedAlg(a) })
}

// allowedAlg: none and HS* never sign an event (a verifier holds no secret
// key, and would verify an HMAC with the public key's bytes).
func allowedAlg(a string) bool {
	return a != "" && !strings.EqualFold(a, "none") && !strings.HasPrefix(strings.ToUpper(a), "HS")
}
