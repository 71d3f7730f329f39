package kafkafeed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/fetch"
)

// The feed fetches with its own Fetch exchange instead of a kafka.Reader:
// kafka-go decodes every record batch as it reads a fetch response, and
// inflates a compressed one whole into memory before anything can look at
// its size (a record of a few KiB on the wire that inflated to 150 MiB took
// a verifier from 19 MB to 1 GB). Here the response is read raw: a batch's
// header says how long it is and which offsets it holds before a byte of it
// is kept, so a batch too large to hold is never read into memory, and one
// that cannot be decoded is skipped exactly, by its offsets, without losing
// the records after it. The request still goes through the Feed's
// kafka.Transport: its dialer, TLS, SASL, metadata and leader routing.

// fetchVersion is the Fetch version spoken: the oldest that every broker
// since Kafka 0.11 accepts, Kafka 4 included (KIP-896), and the first that
// returns a batch larger than the byte limits whole (KIP-74).
const fetchVersion = 4

// Bytes of a v2 record batch header: after baseOffset (8) and batchLength
// (4) come batchHeaderRest bytes, then the records.
const (
	batchPrefix     = 12
	batchHeaderRest = 49
)

// fetchRequest fetches one partition from offset. It implements
// protocol.Message, protocol.BrokerMessage (it goes to the partition's
// leader) and protocol.RawExchanger (it writes itself and reads the
// response raw).
type fetchRequest struct {
	topic     string
	partition int32
	offset    int64
	maxWait   time.Duration
	maxBytes  int32 // fetch size; the first batch comes whole even when larger
	maxBatch  int   // a batch over this many bytes is not read into memory
	clientID  string
	done      func() // called once the exchange ends, if it started

	version int16       // negotiated Fetch version; set by Required
	claimed atomic.Bool // by the exchange when it starts, or by the caller that gave up before
}

// fetchResponse is what a fetch found for the partition.
type fetchResponse struct {
	err     error // the partition's error code, as a kafka.Error; nil if none
	hwm     int64 // high-water mark; -1 if the broker sent an error
	batches []rawBatch
}

var (
	_ protocol.BrokerMessage = (*fetchRequest)(nil)
	_ protocol.RawExchanger  = (*fetchRequest)(nil)
	_ protocol.Message       = (*fetchResponse)(nil)
)

func (r *fetchRequest) ApiKey() protocol.ApiKey  { return protocol.Fetch }
func (r *fetchResponse) ApiKey() protocol.ApiKey { return protocol.Fetch }

func (r *fetchRequest) request() *fetch.Request {
	return &fetch.Request{
		ReplicaID:   -1,
		MaxWaitTime: int32(r.maxWait / time.Millisecond),
		MinBytes:    1, // answer as soon as one record is there
		MaxBytes:    r.maxBytes,
		Topics: []fetch.RequestTopic{{Topic: r.topic, Partitions: []fetch.RequestPartition{{
			Partition: r.partition, FetchOffset: r.offset, PartitionMaxBytes: r.maxBytes}}}},
	}
}

// Broker routes the request to the partition's leader.
func (r *fetchRequest) Broker(c protocol.Cluster) (protocol.Broker, error) {
	return r.request().Broker(c)
}

// Required records the Fetch version the connection negotiated; the
// exchange is always raw.
func (r *fetchRequest) Required(versions map[protocol.ApiKey]int16) bool {
	r.version = versions[protocol.Fetch]
	return true
}

var correlation atomic.Int32

// RawExchange writes the request and reads the response, keeping only this
// partition's batches that are at most maxBatch bytes long.
func (r *fetchRequest) RawExchange(rw io.ReadWriter) (protocol.Message, error) {
	if !r.claimed.CompareAndSwap(false, true) {
		return nil, errAbandoned
	}
	defer r.done()
	if r.version < fetchVersion {
		return nil, fmt.Errorf("the broker does not speak Fetch v%d (it offers v%d): Kafka 0.11 or later is required",
			fetchVersion, r.version)
	}
	id := correlation.Add(1)
	if err := protocol.WriteRequest(rw, fetchVersion, id, r.clientID, r.request()); err != nil {
		return nil, err
	}
	res, err := r.readResponse(rw, id)
	if err != nil {
		// The transport closes the connection after an error: whatever
		// is left of the response cannot confuse the next request.
		return nil, fmt.Errorf("fetch response: %w", err)
	}
	return res, nil
}

// kafkaError is a partition's error code as kafka-go's error type, which
// errors.Is compares by code.
func kafkaError(code int16) error { return kafka.Error(code) }

// errAbandoned ends an exchange whose caller gave up before it started.
var errAbandoned = errors.New("fetch abandoned")

// errMalformed marks a response that does not parse.
var errMalformed = errors.New("malformed fetch response")

func (r *fetchRequest) readResponse(conn io.Reader, id int32) (*fetchResponse, error) {
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 {
		return nil, fmt.Errorf("%w: size %d", errMalformed, n)
	}
	w := &wire{r: &io.LimitedReader{R: conn, N: int64(n)}}
	if got := w.int32(); w.err == nil && got != id {
		return nil, fmt.Errorf("%w: correlation id %d, want %d", errMalformed, got, id)
	}
	res := &fetchResponse{hwm: -1}
	found := false
	w.int32() // throttle time
	for range w.count() {
		topic := w.string()
		for range w.count() {
			partition := w.int32()
			code := w.int16()
			hwm := w.int64()
			w.int64() // last stable offset
			if aborted := w.count(); aborted > 0 {
				w.discard(int64(aborted) * 16) // producer id, first offset
			}
			records := w.int32()
			if w.err != nil {
				break
			}
			if records < 0 { // null
				records = 0
			}
			if topic != r.topic || partition != r.partition || found {
				w.discard(int64(records))
				continue
			}
			found = true
			if code != 0 {
				res.err = kafkaError(code)
			} else {
				res.hwm = hwm
			}
			res.batches = r.readBatches(w, int64(records))
		}
	}
	w.discard(w.r.N) // fields of versions we do not know; nothing should be left
	if w.err != nil {
		return nil, w.err
	}
	if !found {
		return nil, fmt.Errorf("%w: partition %s/%d missing", errMalformed, r.topic, r.partition)
	}
	return res, nil
}

// readBatches reads a records field of n bytes. A batch cut short at the
// end (the fetch size was reached) is dropped: the next fetch starts there.
// A batch longer than maxBatch is kept as its header only, marked tooLarge.
func (r *fetchRequest) readBatches(w *wire, n int64) []rawBatch {
	var out []rawBatch
	for w.err == nil && n >= batchPrefix {
		var b rawBatch
		b.base = w.int64()
		length := int64(w.int32())
		n -= batchPrefix
		if w.err != nil {
			break
		}
		if length < 0 || length > n {
			// A batch cut short: normal at the end of a response. The
			// first batch always comes whole (KIP-74); if it did not,
			// its header still says which offsets to skip.
			if len(out) == 0 && length >= batchHeaderRest && n >= batchHeaderRest {
				w.full(b.header[:])
				n -= batchHeaderRest
				b.parseHeader()
				b.length, b.tooLarge = int(length), true
				out = append(out, b)
			}
			break
		}
		b.length = int(length)
		if length < batchHeaderRest {
			b.magic = -1 // too short for any header we can read
			w.discard(length)
			n -= length
			out = append(out, b)
			continue
		}
		w.full(b.header[:])
		b.parseHeader()
		body := length - batchHeaderRest
		if body > int64(r.maxBatch) || b.magic != 2 {
			b.tooLarge = body > int64(r.maxBatch)
			w.discard(body)
		} else {
			b.body = make([]byte, body)
			w.full(b.body)
		}
		n -= length
		out = append(out, b)
	}
	w.discard(n)
	return out
}

// wire reads the big-endian fields of a response, remembering the first
// error; every read after it returns zero.
type wire struct {
	r   *io.LimitedReader
	err error
	buf [8]byte
}

func (w *wire) full(b []byte) {
	if w.err != nil {
		clear(b)
		return
	}
	if _, err := io.ReadFull(w.r, b); err != nil {
		clear(b)
		w.err = fmt.Errorf("%w: %w", errMalformed, err)
	}
}

func (w *wire) int16() int16 { w.full(w.buf[:2]); return int16(binary.BigEndian.Uint16(w.buf[:2])) }
func (w *wire) int32() int32 { w.full(w.buf[:4]); return int32(binary.BigEndian.Uint32(w.buf[:4])) }
func (w *wire) int64() int64 { w.full(w.buf[:8]); return int64(binary.BigEndian.Uint64(w.buf[:8])) }

// count reads an array length; null counts as 0. A length that cannot fit
// in what is left of the response is an error.
func (w *wire) count() int {
	n := w.int32()
	if w.err != nil || n <= 0 {
		return 0
	}
	if int64(n) > w.r.N {
		w.err = fmt.Errorf("%w: array of %d in %d bytes", errMalformed, n, w.r.N)
		return 0
	}
	return int(n)
}

func (w *wire) string() string {
	n := w.int16()
	if n <= 0 || w.err != nil {
		return ""
	}
	if int64(n) > w.r.N {
		w.err = fmt.Errorf("%w: string of %d in %d bytes", errMalformed, n, w.r.N)
		return ""
	}
	b := make([]byte, n)
	w.full(b)
	return string(b)
}

func (w *wire) discard(n int64) {
	if w.err != nil || n <= 0 {
		return
	}
	if _, err := io.CopyN(io.Discard, w.r, n); err != nil {
		w.err = fmt.Errorf("%w: %w", errMalformed, err)
	}
}
