package mail

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// LoopbackSMTP is a small SMTP server on 127.0.0.1 for tests that need
// answers a mail catcher never gives (a 550 for one recipient, a 451, a
// connection dropped mid-transfer). With Upstream set it relays the
// conversation to that server (Mailpit) and answers only what Reply
// decides; without, it accepts and keeps every message itself.
type LoopbackSMTP struct {
	Addr string

	upstream string
	// reply decides a command's answer: verb is MAIL, RCPT or (sink only)
	// DATA-END, arg the rest of the line (for DATA-END, the message). ""
	// proceeds normally; "CLOSE" drops the connection; anything else is the
	// reply line.
	reply func(verb, arg string) string

	mu       sync.Mutex
	received []Received
}

// Received is a message a sink LoopbackSMTP accepted.
type Received struct {
	From string
	To   []string
	Data string
}

// StartLoopbackSMTP starts the server; it stops at the end of the test.
func StartLoopbackSMTP(t testing.TB, upstream string, reply func(verb, arg string) string) *LoopbackSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &LoopbackSMTP{Addr: ln.Addr().String(), upstream: upstream, reply: reply}
	if s.reply == nil {
		s.reply = func(string, string) string { return "" }
	}
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				if s.upstream != "" {
					s.proxy(c)
				} else {
					s.sink(c)
				}
			})
		}
	})
	return s
}

// Received returns the messages a sink accepted.
func (s *LoopbackSMTP) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

func verbOf(line string) (verb, arg string) {
	verb, arg, _ = strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if verb == "MAIL" || verb == "RCPT" {
		_, arg, _ = strings.Cut(line, ":")
	}
	return verb, strings.TrimSpace(arg)
}

func (s *LoopbackSMTP) sink(c net.Conn) {
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(line string) bool {
		w.WriteString(line + "\r\n")
		return w.Flush() == nil
	}
	say("220 loopback ESMTP")
	var cur Received
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg := verbOf(strings.TrimRight(line, "\r\n"))
		answer := ""
		switch verb {
		case "EHLO":
			answer = "250-loopback\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES"
		case "HELO", "NOOP":
			answer = "250 2.0.0 ok"
		case "RSET":
			cur, answer = Received{}, "250 2.0.0 ok"
		case "QUIT":
			say("221 2.0.0 bye")
			return
		case "MAIL", "RCPT":
			if answer = s.reply(verb, arg); answer == "" {
				answer = "250 2.1.0 ok"
				if verb == "MAIL" {
					cur = Received{From: arg}
				} else {
					cur.To = append(cur.To, arg)
				}
			}
		case "DATA":
			if !say("354 go ahead") {
				return
			}
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			if answer = s.reply("DATA-END", data.String()); answer == "" {
				cur.Data = data.String()
				s.mu.Lock()
				s.received = append(s.received, cur)
				s.mu.Unlock()
				answer = "250 2.0.0 queued"
			}
			cur = Received{}
		default:
			answer = "502 5.5.1 not implemented"
		}
		if answer == "CLOSE" || !say(answer) {
			return
		}
	}
}

func (s *LoopbackSMTP) proxy(c net.Conn) {
	up, err := net.Dial("tcp", s.upstream)
	if err != nil {
		return // the client sees the connection close: an outage
	}
	defer up.Close()
	cr, ur := bufio.NewReader(c), bufio.NewReader(up)
	// relay copies one (possibly multi-line) reply from upstream to c.
	relay := func() (string, bool) {
		var first string
		for {
			l, err := ur.ReadString('\n')
			if err != nil {
				return "", false
			}
			if first == "" {
				first = l
			}
			if _, err := c.Write([]byte(l)); err != nil {
				return "", false
			}
			if len(l) < 4 || l[3] != '-' {
				return first, true
			}
		}
	}
	if _, ok := relay(); !ok { // the greeting
		return
	}
	for {
		line, err := cr.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg := verbOf(strings.TrimRight(line, "\r\n"))
		if verb == "MAIL" || verb == "RCPT" {
			switch answer := s.reply(verb, arg); answer {
			case "":
			case "CLOSE":
				return
			default:
				if _, err := c.Write([]byte(answer + "\r\n")); err != nil {
					return
				}
				continue
			}
		}
		if _, err := up.Write([]byte(line)); err != nil {
			return
		}
		first, ok := relay()
		if !ok {
			return
		}
		if verb == "DATA" && strings.HasPrefix(first, "354") {
			for {
				l, err := cr.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := up.Write([]byte(l)); err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			if _, ok := relay(); !ok {
				return
			}
		}
		if verb == "QUIT" {
			return
		}
	}
}
