package kafkafeed_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/jotguard/jotguard/sdk/kafkafeed"
)

var codecs = []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd}

func codecName(c kafka.Compression) string {
	if c == 0 {
		return "none"
	}
	return c.String()
}

// allocated is how many bytes of heap f allocated (every goroutine's, but
// these tests run alone): deterministic, unlike a sampled peak.
func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// Every codec a Kafka client writes decodes, a batch of 1 MiB included (for
// it, kafka-go's zstd writer declares an 8 MiB window).
func TestDecodeEveryCodec(t *testing.T) {
	small := [][]byte{[]byte("first"), nil, []byte(strings.Repeat("third ", 100))}
	var big [][]byte // 1 MiB of event-sized values, as the issuer's largest batch
	for i := range 1 << 10 {
		big = append(big, fmt.Appendf(nil, "%01000d", i)[:1000])
	}
	for _, codec := range codecs {
		for name, values := range map[string][][]byte{"small": small, "1 MiB": big} {
			t.Run(codecName(codec)+"/"+name, func(t *testing.T) {
				batch := encodeBatch(t, codec, values...)
				got := kafkafeed.DecodeRecords(batch)
				if len(got) != 1 || got[0].Err != nil {
					t.Fatalf("DecodeRecords = %+v, want one batch", got)
				}
				if !slices.EqualFunc(got[0].Values, values, bytes.Equal) {
					t.Errorf("values differ after a round trip")
				}
				if want := int64(len(values) - 1); got[0].Last != want || got[0].Offsets[len(values)-1] != want {
					t.Errorf("last offset %d, records up to %d, want %d", got[0].Last, got[0].Offsets[len(values)-1], want)
				}
			})
		}
	}
}

// snappyDeclaring is snappy data (xerial-framed or not) whose one block
// declares that it inflates to n bytes, and holds one.
func snappyDeclaring(n uint64, framed bool) []byte {
	block := binary.AppendUvarint(nil, n)
	block = append(block, 0, 'x') // a literal of one byte
	if !framed {
		return block
	}
	b := []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	b = binary.BigEndian.AppendUint32(b, uint32(len(block)))
	return append(b, block...)
}

// zstdRLE is a zstd frame of blocks 128 KiB of zeros each (4 bytes a
// block), its header declaring the window 2^windowLog.
func zstdRLE(windowLog int, blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(windowLog-10) << 3}
	for i := range blocks {
		h := 128<<10<<3 | 1<<1 // size, RLE
		if i == blocks-1 {
			h |= 1 // last
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// The limits hold whatever a batch claims, and decoding one allocates a
// few MiB at most.
func TestDecodeBombsAndBrokenBatches(t *testing.T) {
	const bomb = 150 << 20
	huge := make([]byte, 3<<20)
	fcs := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0} // single segment, 8-byte content size…
	fcs = binary.LittleEndian.AppendUint64(fcs, 1<<40)
	badCRC := encodeBatch(t, 0, []byte("value"))
	badCRC[len(badCRC)-3] ^= 0xff
	pastEnd := batchOf(t, 0, 2, func(w io.Writer) { // a record beyond the batch's last offset
		writeRecord(w, 0, 1, strings.NewReader("a"))
		writeRecord(w, 5, 1, strings.NewReader("b"))
	})
	backwards := batchOf(t, 0, 2, func(w io.Writer) {
		writeRecord(w, 1, 1, strings.NewReader("a"))
		writeRecord(w, 0, 1, strings.NewReader("b"))
	})
	oldFormat := encodeBatch(t, 0, []byte("v"))
	oldFormat[16] = 1
	tests := []struct {
		name  string
		batch []byte
		want  error
		last  int64 // the batch's last offset, as its header says
	}{
		{"gzip bomb", bombBatch(t, kafka.Gzip, bomb), kafkafeed.ErrBatchTooLarge, 0},
		{"zstd bomb", bombBatch(t, kafka.Zstd, bomb), kafkafeed.ErrBatchTooLarge, 0},
		{"lz4 bomb", bombBatch(t, kafka.Lz4, bomb), kafkafeed.ErrBatchTooLarge, 0},
		{"snappy bomb", bombBatch(t, kafka.Snappy, 32<<20), kafkafeed.ErrBatchTooLarge, 0},
		{"snappy declaring 4 GiB", rawBatch(kafka.Snappy, 1, snappyDeclaring(1<<32-1, true)), kafkafeed.ErrBatchTooLarge, 0},
		{"snappy unframed declaring 1 GiB", rawBatch(kafka.Snappy, 1, snappyDeclaring(1<<30, false)), kafkafeed.ErrBatchTooLarge, 0},
		{"snappy declaring more than it holds", rawBatch(kafka.Snappy, 1, snappyDeclaring(1<<20, true)), kafkafeed.ErrBatchCorrupt, 0},
		{"zstd window of 2 GiB", rawBatch(kafka.Zstd, 1, zstdRLE(31, 1200)), kafkafeed.ErrBatchTooLarge, 0},
		{"zstd window of 8 MiB, 150 MiB of blocks", rawBatch(kafka.Zstd, 1, zstdRLE(23, 1200)), kafkafeed.ErrBatchTooLarge, 0},
		{"zstd declaring 1 TiB", rawBatch(kafka.Zstd, 1, fcs), kafkafeed.ErrBatchTooLarge, 0},
		{"stored over the limit", encodeBatch(t, 0, huge), kafkafeed.ErrBatchTooLarge, 0},
		{"gzip garbage", rawBatch(kafka.Gzip, 1, []byte("not gzip at all")), kafkafeed.ErrBatchCorrupt, 0},
		{"lz4 garbage", rawBatch(kafka.Lz4, 1, []byte("not lz4 at all")), kafkafeed.ErrBatchCorrupt, 0},
		{"zstd garbage", rawBatch(kafka.Zstd, 1, []byte("not zstd at all")), kafkafeed.ErrBatchCorrupt, 0},
		{"unknown codec", rawBatch(5, 1, []byte("x")), kafkafeed.ErrBatchFormat, 0},
		{"CRC mismatch", badCRC, kafkafeed.ErrBatchCorrupt, 0},
		{"fewer records than counted", rawBatch(0, 3, encodeBatch(t, 0, []byte("one"))[61:]), kafkafeed.ErrBatchCorrupt, 2},
		{"record past the batch's last offset", pastEnd, kafkafeed.ErrBatchCorrupt, 1},
		{"offsets going backwards", backwards, kafkafeed.ErrBatchCorrupt, 1},
		{"message format v1", oldFormat, kafkafeed.ErrBatchFormat, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []kafkafeed.DecodedBatch
			n := allocated(func() { got = kafkafeed.DecodeRecords(tt.batch) })
			t.Logf("%d bytes stored; decoding allocated %s", len(tt.batch), mib(n))
			if len(got) != 1 {
				t.Fatalf("DecodeRecords found %d batches, want 1", len(got))
			}
			if !errors.Is(got[0].Err, tt.want) {
				t.Errorf("error = %v, want %v", got[0].Err, tt.want)
			}
			if got[0].First != 0 || got[0].Last != tt.last {
				t.Errorf("offsets %d-%d, want 0-%d", got[0].First, got[0].Last, tt.last)
			}
			// The window buffer of a zstd decoder (twice the window with
			// klauspost/compress v1.15, the sdk's minimum), the inflated
			// data and its growth: what the bound of a Feed is made of.
			if limit := uint64(2*kafkafeed.ZstdWindow + 3*kafkafeed.MaxBatchBytes); n > limit {
				t.Errorf("decoding allocated %s, want at most %s", mib(n), mib(limit))
			}
		})
	}
}

// Batches follow each other in a response: a bad one in the middle is
// skipped by its own offsets, and one cut short at the end is left for the
// next fetch.
func TestDecodeSkipsOnlyTheBadBatch(t *testing.T) {
	at := func(base int64, b []byte) []byte {
		binary.BigEndian.PutUint64(b, uint64(base)) // not under the CRC
		return b
	}
	bomb := at(3, bombBatch(t, kafka.Zstd, 64<<20))
	binary.BigEndian.PutUint32(bomb[23:], 4) // it claims offsets 3 to 7
	binary.BigEndian.PutUint32(bomb[57:], 5)
	sealBatch(bomb)
	records := slices.Concat(
		at(0, encodeBatch(t, kafka.Gzip, []byte("a"), []byte("b"), []byte("c"))),
		bomb,
		at(8, encodeBatch(t, 0, []byte("after"))),
	)
	cut := at(9, encodeBatch(t, kafka.Snappy, []byte("cut short")))
	records = append(records, cut[:len(cut)-4]...)

	got := kafkafeed.DecodeRecords(records)
	if len(got) != 3 {
		t.Fatalf("DecodeRecords found %d batches, want 3 (the one cut short is dropped)", len(got))
	}
	if got[0].Err != nil || !slices.Equal(got[0].Offsets, []int64{0, 1, 2}) {
		t.Errorf("first batch: %v, offsets %v", got[0].Err, got[0].Offsets)
	}
	if !errors.Is(got[1].Err, kafkafeed.ErrBatchTooLarge) || got[1].First != 3 || got[1].Last != 7 {
		t.Errorf("bomb: %v, offsets %d-%d, want too large, 3-7", got[1].Err, got[1].First, got[1].Last)
	}
	if got[2].Err != nil || !slices.Equal(got[2].Offsets, []int64{8}) || string(got[2].Values[0]) != "after" {
		t.Errorf("batch after the bomb: %v, offsets %v", got[2].Err, got[2].Offsets)
	}
}

// Nothing a broker could send makes the decoder panic or skip offsets
// outside a batch.
func FuzzDecodeRecords(f *testing.F) {
	for _, c := range codecs {
		f.Add(encodeBatch(f, c, []byte("one"), []byte("two")))
	}
	f.Add(rawBatch(kafka.Snappy, 1, snappyDeclaring(1<<30, true)))
	f.Add(rawBatch(kafka.Zstd, 1, zstdRLE(23, 3)))
	f.Fuzz(func(t *testing.T, records []byte) {
		for _, b := range kafkafeed.DecodeRecords(records) {
			if b.Last < b.First {
				t.Fatalf("batch ends at %d before it starts at %d", b.Last, b.First)
			}
			for i, o := range b.Offsets {
				if o < b.First || o > b.Last || i > 0 && o <= b.Offsets[i-1] {
					t.Fatalf("offset %d outside %d-%d or not increasing: %v", o, b.First, b.Last, b.Offsets)
				}
			}
		}
	})
}
