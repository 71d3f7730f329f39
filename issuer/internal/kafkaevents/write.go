package kafkaevents

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jotguard/jotguard/sdk/revocation"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

// maxBatchBytes is the size a Publisher keeps its batches under: far below
// what a consumer reads (revocation.MaxBatchSize) and what a Kafka broker
// takes in one message by default (1 MB), and large enough for a couple of
// thousand events.
const maxBatchBytes = 256 << 10

// write sends recs to Kafka and returns those not acknowledged. A user's
// records after a failed one count as failed too, so order is kept when
// they are retried.
func (p *Publisher) write(ctx context.Context, recs []record) ([]record, error) {
	if p.w == nil {
		p.setKafkaErr(errNoKafka)
		return recs, errNoKafka
	}
	msgs, carriers, err := p.messages(ctx, recs)
	if err != nil {
		return recs, err
	}
	err = p.w.WriteMessages(ctx, msgs...)
	p.setKafkaErr(err)
	if err == nil {
		p.records.Add(uint64(len(msgs)))
		if p.relayWaits.Load() { // Kafka is back: the relay need not wait for its probe
			select {
			case p.kafkaUp <- struct{}{}:
			default:
			}
		}
		return nil, nil
	}
	// The transport keeps the cluster's metadata, and a failed lookup,
	// until its next refresh (seconds): drop it, so that the next write
	// asks the brokers afresh.
	p.tr.CloseIdleConnections()
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		return recs, err
	}
	bad := map[string]bool{}
	var failed []record
	for i, r := range recs {
		if werrs[carriers[i]] != nil || bad[r.sub] {
			bad[r.sub] = true
			failed = append(failed, r)
		}
	}
	p.records.Add(uint64(len(msgs) - countErrors(werrs)))
	return failed, err
}

// writeTraced is write, for the events of Publish calls. A batch, which
// carries one trace context for events of many calls, gets a send span of
// its own, linked to each call's.
func (p *Publisher) writeTraced(ctx context.Context, recs []record) ([]record, error) {
	links := creators(recs)
	if p.cfg.SETs || len(links) < 2 { // each record carries its call's context
		return p.write(ctx, recs)
	}
	ctx, span := p.startSend(ctx, len(recs), links...)
	failed, err := p.write(ctx, recs)
	endSend(span, 0, err)
	return failed, err
}

// creators links to the creation contexts of recs, each once.
func creators(recs []record) []trace.Link {
	var links []trace.Link
	for _, r := range recs {
		if r.trace.IsValid() && !slices.ContainsFunc(links, func(l trace.Link) bool { return l.SpanContext.Equal(r.trace) }) {
			links = append(links, trace.Link{SpanContext: r.trace})
		}
	}
	return links
}

func countErrors(errs kafka.WriteErrors) int {
	n := 0
	for _, e := range errs {
		if e != nil {
			n++
		}
	}
	return n
}

// messages are the Kafka records that carry recs: one SET each, with its
// creation context, or their events in batches, with the creation context
// they share, if one, else that of the send span in ctx (linked to
// theirs). carriers[i] is the index of the record carrying recs[i].
func (p *Publisher) messages(ctx context.Context, recs []record) (msgs []kafka.Message, carriers []int, err error) {
	carriers = make([]int, len(recs))
	if p.cfg.SETs {
		msgs = make([]kafka.Message, len(recs))
		for i, r := range recs {
			msgs[i] = kafka.Message{Key: []byte(r.sub), Value: []byte(r.set),
				Headers: withTrace([]kafka.Header{{Key: "content-type", Value: []byte(revocation.ContentType)}}, r.trace)}
			carriers[i] = i
		}
		return msgs, carriers, nil
	}
	sent := trace.SpanContextFromContext(ctx)
	if links := creators(recs); len(links) == 1 {
		sent = links[0].SpanContext
	}
	key, err := p.signer.BatchKey()
	if err != nil {
		return nil, nil, fmt.Errorf("kafkaevents: sign batch: %w", err)
	}
	now := p.cfg.Now()
	// A batch has one issuer: runs of one issuer (in practice all), cut
	// to size.
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && recs[end].e.Issuer == recs[start].e.Issuer {
			end++
		}
		events := make([]revocation.Event, end-start)
		for i, r := range recs[start:end] {
			events[i] = r.e
		}
		at := start
		for _, run := range revocation.SplitBatches(events, maxBatchBytes) {
			raw, err := revocation.SealBatch(revocation.Batch{ID: rand.Text(), Issuer: run[0].Issuer,
				Audience: p.cfg.Audience, IssuedAt: now, Events: run}, key)
			if err != nil {
				return nil, nil, fmt.Errorf("kafkaevents: batch: %w", err)
			}
			for range run {
				carriers[at] = len(msgs)
				at++
			}
			msgs = append(msgs, kafka.Message{Value: raw,
				Headers: withTrace([]kafka.Header{{Key: "content-type", Value: []byte(revocation.BatchContentType)}}, sent)})
		}
		start = end
	}
	return msgs, carriers, nil
}

// groupCommit gives the events of concurrent Publish calls one write, at
// most one every Config.BatchWait: an event waits at most that long for
// others to share its batch, and a Publish at most AckTimeout (and the
// write under way) for its events' fate.
type groupCommit struct {
	p      *Publisher
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context // of the writes: close ends the one under way
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   []*commit
	writing int // records in the write under way
	closed  bool
}

// commit is the records of one Publish, waiting for their write.
type commit struct {
	recs     []record
	deadline time.Time
	failed   []record // set when done is closed
	err      error
	done     chan struct{}
}

// errClosed fails the records of a Publish whose Publisher closes: they go
// to the outbox.
var errClosed = errors.New("the publisher is closing")

func newGroupCommit(p *Publisher) *groupCommit {
	g := &groupCommit{p: p, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	go g.run()
	return g
}

// write writes recs with the records of other Publish calls, and returns
// those not acknowledged within AckTimeout.
func (g *groupCommit) write(recs []record) ([]record, error) {
	if g.p.w == nil { // nothing to wait for
		g.p.setKafkaErr(errNoKafka)
		return recs, errNoKafka
	}
	c := &commit{recs: recs, deadline: time.Now().Add(g.p.cfg.AckTimeout), done: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return recs, errClosed
	}
	g.queue = append(g.queue, c)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	<-c.done
	return c.failed, c.err
}

// close fails what waits and the write under way, and stops.
func (g *groupCommit) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	g.cancel()
	<-g.done
}

func (g *groupCommit) run() {
	defer close(g.done)
	var last time.Time // when the last write started
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-g.stop:
			g.mu.Lock()
			q := g.queue
			g.queue = nil
			g.mu.Unlock()
			for _, c := range q {
				c.finish(c.recs, errClosed)
			}
			return
		case <-g.wake:
		case <-timer.C:
		}
		now := time.Now()
		take, wait := g.take(now, last)
		if len(take) == 0 {
			if wait > 0 {
				timer.Reset(wait)
			}
			continue
		}
		last = now
		deadline := take[0].deadline
		var recs []record
		for _, c := range take {
			recs = append(recs, c.recs...)
			if c.deadline.Before(deadline) {
				deadline = c.deadline
			}
		}
		ctx, cancel := context.WithDeadline(g.ctx, deadline)
		g.setWriting(len(recs))
		failed, err := g.p.writeTraced(ctx, recs)
		g.setWriting(0)
		cancel()
		lost := map[string]bool{}
		for _, r := range failed {
			lost[r.id] = true
		}
		for _, c := range take {
			var mine []record
			for _, r := range c.recs {
				if lost[r.id] {
					mine = append(mine, r)
				}
			}
			c.finish(mine, err)
		}
		select { // the queue may have grown during the write
		case g.wake <- struct{}{}:
		default:
		}
	}
}

func (g *groupCommit) setWriting(n int) {
	g.mu.Lock()
	g.writing = n
	g.mu.Unlock()
}

// take returns the commits to write now, and fails those whose deadline
// passed; when the last write is too recent, it returns none and how long
// to wait.
func (g *groupCommit) take(now, last time.Time) (take []*commit, wait time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.queue[:0]
	for _, c := range g.queue {
		if now.Before(c.deadline) {
			q = append(q, c)
		} else {
			c.finish(c.recs, context.DeadlineExceeded)
		}
	}
	clear(g.queue[len(q):])
	g.queue = q
	if len(q) == 0 {
		return nil, 0
	}
	if next := last.Add(g.p.cfg.BatchWait); now.Before(next) {
		wait = next.Sub(now)
		for _, c := range q {
			wait = min(wait, c.deadline.Sub(now))
		}
		return nil, wait
	}
	g.queue = nil
	return q, 0
}

func (c *commit) finish(failed []record, err error) {
	if len(failed) == 0 {
		err = nil
	}
	c.failed, c.err = failed, err
	close(c.done)
}
