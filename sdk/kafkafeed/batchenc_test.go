package kafkafeed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// Record batches as a producer sends them (Kafka's v2 format), built here
// so that tests can write what no well-behaved client would: bombs, lies
// about sizes, broken data.

// encodeBatch is a batch of one record per value, compressed with codec.
func encodeBatch(t testing.TB, codec kafka.Compression, values ...[]byte) []byte {
	t.Helper()
	return batchOf(t, codec, len(values), func(w io.Writer) {
		for i, v := range values {
			writeRecord(w, i, int64(len(v)), bytes.NewReader(v))
		}
	})
}

// bombBatch is a batch whose one record value is size zero bytes,
// compressed with codec as it is written: nothing of size is held.
func bombBatch(t testing.TB, codec kafka.Compression, size int64) []byte {
	t.Helper()
	return batchOf(t, codec, 1, func(w io.Writer) {
		writeRecord(w, 0, size, io.LimitReader(zeros{}, size))
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// rawBatch is a batch of count records whose records section, as stored,
// is body: whatever the codec bits say.
func rawBatch(codec kafka.Compression, count int, body []byte) []byte {
	b := make([]byte, 61, 61+len(body))
	now := time.Now().UnixMilli()
	binary.BigEndian.PutUint32(b[8:], uint32(49+len(body))) // batchLength
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)          // partitionLeaderEpoch
	b[16] = 2                                               // magic
	binary.BigEndian.PutUint16(b[21:], uint16(codec))       // attributes
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))     // lastOffsetDelta
	binary.BigEndian.PutUint64(b[27:], uint64(now))         // baseTimestamp
	binary.BigEndian.PutUint64(b[35:], uint64(now))         // maxTimestamp
	binary.BigEndian.PutUint64(b[43:], 0xffffffffffffffff)  // producerId
	binary.BigEndian.PutUint16(b[51:], 0xffff)              // producerEpoch
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)          // baseSequence
	binary.BigEndian.PutUint32(b[57:], uint32(count))       // records
	b = append(b, body...)
	sealBatch(b)
	return b
}

// sealBatch sets a batch's CRC after its fields were changed.
func sealBatch(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}

func batchOf(t testing.TB, codec kafka.Compression, count int, write func(io.Writer)) []byte {
	t.Helper()
	var body bytes.Buffer
	if codec == 0 {
		write(&body)
	} else {
		w := codec.Codec().NewWriter(&body)
		write(w)
		if err := w.Close(); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
	}
	return rawBatch(codec, count, body.Bytes())
}

// writeRecord writes a record without key or headers: value is its size
// bytes.
func writeRecord(w io.Writer, delta int, size int64, value io.Reader) {
	var head []byte
	head = append(head, 0)              // attributes
	head = binary.AppendVarint(head, 0) // timestampDelta
	head = binary.AppendVarint(head, int64(delta))
	head = binary.AppendVarint(head, -1) // no key
	head = binary.AppendVarint(head, size)
	tail := binary.AppendVarint(nil, 0) // no headers
	w.Write(binary.AppendVarint(nil, int64(len(head))+size+int64(len(tail))))
	w.Write(head)
	io.Copy(struct{ io.Writer }{w}, value) // not lz4's ReadFrom, which leaves its writer unclosable
	w.Write(tail)
}

// rawProduce writes one batch as it is to a partition.
func rawProduce(t testing.TB, brokers []string, topic string, partition int, batch []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	set := binary.BigEndian.AppendUint32(nil, uint32(len(batch))) // the records field: its length, then the batch
	res, err := c.RawProduce(ctx, &kafka.RawProduceRequest{Topic: topic, Partition: partition,
		RequiredAcks: kafka.RequireAll, RawRecords: protocol.RawRecordSet{Reader: bytes.NewReader(append(set, batch...))}})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		t.Fatalf("raw produce of %d bytes to %s/%d: %v", len(batch), topic, partition, err)
	}
}
