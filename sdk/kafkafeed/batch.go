package kafkafeed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxBatchBytes is the largest record batch a Feed decodes, as stored
// (compressed or not) and once inflated. The issuer's batches hold at most
// 1 MiB of records (kafka-go's Writer.BatchBytes) and every event is at
// most revocation.MaxSETSize; whatever could not come from the issuer (a
// compression bomb: a few KiB on the wire that inflate to gigabytes) is
// skipped whole, without being held in memory, and counted in
// Stats.Undecodable.
const MaxBatchBytes = 2 << 20

// inflating lets one batch at a time be inflated in the process, over all
// Feeds and partitions: what inflating takes (MaxBatchBytes, and a codec's
// state of a few MiB) does not grow with the number of partitions.
var inflating = make(chan struct{}, 1)

// Why a batch is skipped whole.
var (
	errBatchTooLarge = errors.New("record batch over the size limit")
	errBatchCorrupt  = errors.New("record batch corrupt")
	errBatchFormat   = errors.New("record batch format not supported")
)

// rawBatch is one record batch of a fetch response, as stored.
type rawBatch struct {
	base      int64                 // offset of its first record
	length    int                   // bytes after the baseOffset and batchLength fields
	header    [batchHeaderRest]byte // as stored: the CRC covers its tail
	magic     int8                  // 2: the format since Kafka 0.11; -1: too short to tell
	attrs     int16
	lastDelta int32
	maxTs     int64 // the batch's largest timestamp, Unix ms
	count     int32
	body      []byte // the records as stored; nil when not read (too large, or not v2)
	tooLarge  bool
}

// Offsets of the fields in rawBatch.header (after baseOffset, batchLength).
const (
	hdrMagic     = 4  // after partitionLeaderEpoch; the same place in every format
	hdrCRC       = 5  // CRC-32C of everything from hdrAttrs on
	hdrAttrs     = 9  // bits 0-2 compression, 5 control batch
	hdrLastDelta = 11 // lastOffsetDelta
	hdrMaxTime   = 23 // maxTimestamp
	hdrCount     = 45 // number of records
)

func (b *rawBatch) parseHeader() {
	h := b.header[:]
	b.magic = int8(h[hdrMagic])
	if b.magic != 2 {
		return
	}
	b.attrs = int16(binary.BigEndian.Uint16(h[hdrAttrs:]))
	b.lastDelta = int32(binary.BigEndian.Uint32(h[hdrLastDelta:]))
	b.maxTs = int64(binary.BigEndian.Uint64(h[hdrMaxTime:]))
	b.count = int32(binary.BigEndian.Uint32(h[hdrCount:]))
}

// last is the offset of the batch's last record. An entry of the formats
// before v2 holds one offset: its own, which for a compressed wrapper is
// its last inner message's.
func (b *rawBatch) last() int64 {
	if b.magic != 2 || b.lastDelta < 0 {
		return b.base
	}
	return b.base + int64(b.lastDelta)
}

func (b *rawBatch) control() bool { return b.magic == 2 && b.attrs&0x20 != 0 }

// maxTime is the batch's largest timestamp (Unix ms); the largest there is
// for a batch of an old format, which holds none.
func (b *rawBatch) maxTime() int64 {
	if b.magic != 2 {
		return math.MaxInt64
	}
	return b.maxTs
}
func (b *rawBatch) codec() int { return int(b.attrs & 0x07) }

// record is one decoded record: what the feed needs of it.
type record struct {
	offset  int64
	value   []byte
	headers []byte // as stored (a count, then the headers): read only for tracing
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// records checks and decodes the batch, inflating it into at most
// MaxBatchBytes. Inflating waits for its turn in the process.
func (b *rawBatch) records(ctx context.Context) ([]record, error) {
	switch {
	case b.tooLarge:
		return nil, fmt.Errorf("%w: %d bytes stored, the limit is %d", errBatchTooLarge, b.length, MaxBatchBytes)
	case b.magic < 0:
		return nil, fmt.Errorf("%w: %d bytes, too short for a batch header", errBatchCorrupt, b.length)
	case b.magic != 2:
		return nil, fmt.Errorf("%w: message format v%d (Kafka 0.11 and later write v2)", errBatchFormat, b.magic)
	}
	crc := crc32.Update(crc32.Checksum(b.header[hdrAttrs:], castagnoli), castagnoli, b.body)
	if want := binary.BigEndian.Uint32(b.header[hdrCRC:]); crc != want {
		return nil, fmt.Errorf("%w: CRC %08x, the header says %08x", errBatchCorrupt, crc, want)
	}
	data := b.body
	if c := b.codec(); c != 0 {
		select {
		case inflating <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var err error
		data, err = inflate(c, b.body, MaxBatchBytes)
		<-inflating
		if err != nil {
			return nil, err
		}
	}
	return parseRecords(data, b.base, b.lastDelta, b.count)
}

// Sizes of a record's fields: the smallest record is 7 bytes of varints.
const minRecordSize = 7

// parseRecords decodes count records. Offsets must increase and stay
// within the batch (base to base+lastDelta): a record may not make the feed
// skip offsets that another batch holds.
func parseRecords(data []byte, base int64, lastDelta, count int32) ([]record, error) {
	if count < 0 {
		return nil, fmt.Errorf("%w: %d records", errBatchCorrupt, count)
	}
	out := make([]record, 0, min(int(count), len(data)/minRecordSize))
	prev := int64(-1)
	for i := range count {
		length, n := binary.Varint(data)
		if n <= 0 || length < 0 || length > int64(len(data)-n) {
			return nil, fmt.Errorf("%w: record %d of %d: bad length", errBatchCorrupt, i, count)
		}
		rec := data[n : n+int(length)]
		data = data[n+int(length):]
		delta, value, headers, err := parseRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: record %d of %d: %w", errBatchCorrupt, i, count, err)
		}
		if delta <= prev || delta > int64(lastDelta) {
			return nil, fmt.Errorf("%w: record %d of %d: offset delta %d after %d, the batch ends at %d",
				errBatchCorrupt, i, count, delta, prev, lastDelta)
		}
		prev = delta
		out = append(out, record{offset: base + delta, value: value, headers: headers})
	}
	return out, nil
}

// parseRecord returns a record's offset delta, value and headers as
// stored; its key is not read (the feed keys nothing, and the value is the
// event), nor are its headers here.
func parseRecord(rec []byte) (delta int64, value, headers []byte, err error) {
	if len(rec) < 1 {
		return 0, nil, nil, errors.New("empty")
	}
	rec = rec[1:] // attributes
	varint := func() int64 {
		v, n := binary.Varint(rec)
		if n <= 0 {
			err = errors.New("bad varint")
			return 0
		}
		rec = rec[n:]
		return v
	}
	bytesField := func() []byte {
		l := varint()
		if err != nil || l < 0 {
			return nil // null
		}
		if l > int64(len(rec)) {
			err = errors.New("field longer than the record")
			return nil
		}
		b := rec[:l:l]
		rec = rec[l:]
		return b
	}
	varint() // timestamp delta
	delta = varint()
	bytesField() // key
	value = bytesField()
	return delta, value, rec, err
}

// inflate decompresses src (Kafka compression codec c) into at most limit
// bytes. No codec allocates by a size the data declares before that size
// is checked.
func inflate(c int, src []byte, limit int) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case 1:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = readCapped(zr, limit, len(src))
		}
	case 2:
		out, err = unsnappy(src, limit)
	case 3:
		out, err = unlz4(src, limit)
	case 4:
		out, err = unzstd(src, limit)
	default:
		return nil, fmt.Errorf("%w: compression codec %d", errBatchFormat, c)
	}
	switch {
	case errors.Is(err, errBatchTooLarge):
		return nil, fmt.Errorf("%w: %d bytes stored inflate to more than %d", errBatchTooLarge, len(src), limit)
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", errBatchCorrupt, codecName(c), err)
	}
	return out, nil
}

func codecName(c int) string {
	return [...]string{"none", "gzip", "snappy", "lz4", "zstd"}[c]
}

// readCapped reads r to its end into at most limit bytes, growing its
// buffer as the data comes, never past limit+1.
func readCapped(r io.Reader, limit, hint int) ([]byte, error) {
	buf := make([]byte, 0, min(limit+1, max(4*hint, 4<<10)))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, errBatchTooLarge
			}
			grown := make([]byte, len(buf), min(limit+1, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if len(buf) > limit {
				return nil, errBatchTooLarge
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// xerialHeader starts snappy data in the framing of the Java snappy library
// (which Kafka clients write, kafka-go's too): the header, then chunks of a
// big-endian length and one snappy block.
var xerialHeader = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// unsnappy inflates snappy data, xerial-framed or one raw block. Each block
// declares its inflated length: they are summed and checked before anything
// is allocated.
func unsnappy(src []byte, limit int) ([]byte, error) {
	framed := len(src) >= 16 && bytes.Equal(src[:8], xerialHeader)
	each := func(f func(block []byte) error) error {
		if !framed {
			return f(src)
		}
		for p := src[16:]; len(p) > 0; {
			if len(p) < 4 || uint64(binary.BigEndian.Uint32(p)) > uint64(len(p)-4) {
				return errors.New("bad xerial framing")
			}
			n := binary.BigEndian.Uint32(p)
			if err := f(p[4 : 4+n]); err != nil {
				return err
			}
			p = p[4+n:]
		}
		return nil
	}
	total := 0
	err := each(func(b []byte) error {
		n, err := snappy.DecodedLen(b)
		switch {
		case err != nil:
			return err
		case n > limit-total:
			return errBatchTooLarge
		}
		total += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]byte, total)
	off := 0
	err = each(func(b []byte) error {
		n, _ := snappy.DecodedLen(b)
		d, err := snappy.Decode(out[off:off+n:off+n], b)
		if err == nil && len(d) != n {
			err = errors.New("a block shorter than it declares")
		}
		off += n
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unlz4 inflates LZ4 frames block by block straight into the output, never
// past limit: unlike a streaming reader, it makes no buffer of the frame's
// block size (4 MiB in what kafka-go writes). The checksums are not
// checked: the batch's CRC covers the frames.
func unlz4(src []byte, limit int) ([]byte, error) {
	out := make([]byte, 0, min(limit+1, max(4*len(src), 4<<10)))
	bad := func(what string) ([]byte, error) { return nil, fmt.Errorf("lz4 frame: %s", what) }
	for len(src) > 0 {
		if len(src) < 4 {
			return bad("truncated")
		}
		switch magic := binary.LittleEndian.Uint32(src); {
		case magic&0xfffffff0 == 0x184d2a50: // a skippable frame
			if len(src) < 8 || uint64(binary.LittleEndian.Uint32(src[4:])) > uint64(len(src)-8) {
				return bad("truncated")
			}
			src = src[8+binary.LittleEndian.Uint32(src[4:]):]
			continue
		case magic != 0x184d2204:
			return bad("bad magic number")
		}
		if len(src) < 7 {
			return bad("truncated")
		}
		flg, bd := src[4], src[5]
		if flg>>6 != 1 || flg&0x01 != 0 || bd>>4&7 < 4 {
			return bad("unsupported version, dictionary or block size")
		}
		independent, blockSums, contentSum := flg&0x20 != 0, flg&0x10 != 0, flg&0x04 != 0
		blockMax := 1 << (8 + 2*int(bd>>4&7)) // 64 KiB to 4 MiB
		p := 7                                // magic, flags, block size, header checksum
		if flg&0x08 != 0 {
			p += 8 // content size
		}
		if len(src) < p {
			return bad("truncated")
		}
		src = src[p:]
		for {
			if len(src) < 4 {
				return bad("truncated")
			}
			size := binary.LittleEndian.Uint32(src)
			src = src[4:]
			if size == 0 { // end mark
				break
			}
			stored := size&(1<<31) != 0
			size &^= 1 << 31
			if int64(size) > int64(min(len(src), blockMax)) {
				return bad("block larger than its frame allows")
			}
			block := src[:size]
			src = src[size:]
			if blockSums {
				if len(src) < 4 {
					return bad("truncated")
				}
				src = src[4:]
			}
			room := limit + 1 - len(out)
			if stored {
				if len(block) > room {
					return nil, errBatchTooLarge
				}
				out = append(out, block...)
				continue
			}
			want := min(room, blockMax)
			if cap(out)-len(out) < want {
				grown := make([]byte, len(out), min(limit+1, max(2*cap(out), len(out)+want)))
				copy(grown, out)
				out = grown
			}
			var dict []byte
			if !independent {
				dict = out[max(0, len(out)-64<<10):]
			}
			n, err := lz4.UncompressBlockWithDict(block, out[len(out):len(out)+want], dict)
			if err != nil {
				if room < blockMax { // it may just not fit
					return nil, errBatchTooLarge
				}
				return nil, err
			}
			out = out[:len(out)+n]
			if len(out) > limit {
				return nil, errBatchTooLarge
			}
		}
		if contentSum {
			if len(src) < 4 {
				return bad("truncated")
			}
			src = src[4:]
		}
	}
	return out, nil
}

// zstdBlock is the most a zstd decoder inflates at a time.
const zstdBlock = 128 << 10

// zstdWindowDescriptor declares the window a Feed's zstd decoder gets:
// what inflating MaxBatchBytes needs, and a block more. A frame declares
// the window its encoder kept for references back (kafka-go's Writer
// declares 8 MiB for a batch over 128 KiB), and a streaming decoder makes
// a buffer of that size however little it inflates. Only the first
// MaxBatchBytes are ever inflated, and no reference there reaches further
// back than that: lowering a larger window in a frame's header to this one
// changes nothing in what is inflated.
var zstdWindowDescriptor = windowDescriptor(MaxBatchBytes + zstdBlock)

// windowDescriptor returns the smallest zstd Window_Descriptor that
// declares at least n bytes.
func windowDescriptor(n int) byte {
	for d := range 256 {
		if windowSize(byte(d)) >= n {
			return byte(d)
		}
	}
	return 0xff
}

// windowSize is the window a zstd Window_Descriptor declares.
func windowSize(d byte) int {
	base := 1 << (10 + int(d>>3))
	return base + base/8*int(d&7)
}

// unzstd inflates zstd data through a streaming decoder, which stops once
// limit is passed, its window lowered to zstdWindowDescriptor's.
func unzstd(src []byte, limit int) ([]byte, error) {
	var in io.Reader = struct{ io.Reader }{bytes.NewReader(src)} // only a reader: the decoder streams it
	// A frame's header: magic, descriptor, then the window unless a single
	// segment (whose window is its content size, checked against limit).
	if len(src) >= 6 && binary.LittleEndian.Uint32(src) == 0xfd2fb528 && src[4]&0x20 == 0 &&
		windowSize(src[5]) > windowSize(zstdWindowDescriptor) {
		head := []byte{src[0], src[1], src[2], src[3], src[4], zstdWindowDescriptor}
		in = io.MultiReader(bytes.NewReader(head), bytes.NewReader(src[6:]))
	}
	window := uint64(windowSize(zstdWindowDescriptor)) // a later frame may declare no more
	d, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(window))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	out, err := readCapped(d, limit, len(src))
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = errBatchTooLarge // a frame that declares more than it may inflate to
	}
	return out, err
}
