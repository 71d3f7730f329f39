package stack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"

	mailpitcmd "github.com/axllent/mailpit/cmd"
	mailpitconfig "github.com/axllent/mailpit/config"

	_ "github.com/jotguard/jotguard/deploy/devstack/internal/nompenv" // before Mailpit's cmd reads MP_*
)

// Mailpit runs as a child process of this program's own executable: its
// packages keep their settings in globals, its storage and SMTP server are
// internal packages, and it ends the whole process itself (os.Exit on
// SIGTERM and on errors), with no way to stop it from the outside. Its code
// is linked into the program all the same, so there is no second binary to
// build or find.
const mailpitChildEnv = "JOTGUARD_DEVSTACK_CHILD"

// runChildCalled records that the program called RunChild, so that Start
// can re-execute it as Mailpit.
var runChildCalled atomic.Bool

// RunChild must be called first in main, and in TestMain of tests that
// start the mail service. In the process that Start re-executes to run
// Mailpit, it runs Mailpit and never returns; everywhere else it returns at
// once.
func RunChild() {
	if os.Getenv(mailpitChildEnv) != Mail {
		runChildCalled.Store(true)
		return
	}
	if v := mailpitVersion(); v != "" {
		mailpitconfig.Version = v // in /api/v1/info, instead of "dev"
	}
	mailpitcmd.Execute() // parses os.Args[1:]; exits the process itself
	os.Exit(0)
}

// mailpitVersion is the version of the Mailpit module linked in, or "".
func mailpitVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == "github.com/axllent/mailpit" {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

func (s *Stack) startMail(ctx context.Context, opts Options) error {
	if !runChildCalled.Load() {
		return fmt.Errorf("the program does not call stack.RunChild first in main, so it cannot run Mailpit")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(opts.DataDir, "mail")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	smtpPort, err := portOrFree(opts.SMTPPort)
	if err != nil {
		return err
	}
	httpPort, err := portOrFree(opts.MailPort)
	if err != nil {
		return err
	}
	// Mailpit's own HTTP server listens on an internal port; the public one
	// is the inbox's (inbox.go), which passes everything but / to it.
	internalPort, err := freePort()
	if err != nil {
		return err
	}
	smtpAddr, httpAddr, internalAddr := hostPort(smtpPort), hostPort(httpPort), hostPort(internalPort)

	// Plain SMTP on loopback: with no --smtp-tls-* and no --smtp-auth-*
	// flag Mailpit offers neither STARTTLS nor AUTH and accepts any mail
	// from any client, which is what the issuer, told to use plain SMTP
	// for a loopback JOTGUARD_SMTP_URL, sends. The MP_* variables that
	// Mailpit also reads are gone from the environment (package nompenv),
	// so a developer's own Mailpit settings cannot turn TLS or AUTH on.
	cmd := exec.Command(self,
		"--smtp", smtpAddr,
		"--listen", internalAddr,
		"--database", filepath.Join(dir, "mailpit.db"),
		"--allowed-hosts", "127.0.0.1", // and localhost, ::1: no DNS rebinding of the API
		"--smtp-disable-rdns",     // no DNS lookups of the client's address
		"--disable-version-check", // no call to GitHub from /api/v1/info
	)
	cmd.Env = append(os.Environ(), mailpitChildEnv+"="+Mail)
	log := opts.Logger.With("service", Mail)
	// Mailpit logs to stdout, panics and flag errors go to stderr; the
	// devstack's stdout carries only the export lines, so both are
	// re-logged. Like FerretDB's, its info lines are dropped.
	quiet := slog.New(&levelFloor{Handler: log.Handler(), min: slog.LevelWarn})
	cmd.Stdout = &lineLog{log: quiet, level: slog.LevelInfo}
	cmd.Stderr = &lineLog{log: quiet, level: slog.LevelError}
	p, err := startChild(cmd)
	if err != nil {
		return err
	}
	s.onClose(p.stop)
	s.SMTPURL = "smtp://" + smtpAddr
	s.MailpitURL = "http://" + httpAddr
	if err := waitTCP(ctx, smtpAddr, smtpGreeting, p.exited); err != nil {
		return err
	}
	if err := waitTCP(ctx, internalAddr, httpReady, p.exited); err != nil {
		return err
	}
	in := newInbox(&url.URL{Scheme: "http", Host: internalAddr}, s.SMTPURL, mailpitVersion(), log)
	if err := s.serveInbox(httpAddr, in); err != nil {
		return fmt.Errorf("inbox on %s: %w", httpAddr, err)
	}
	if err := waitTCP(ctx, httpAddr, httpReady, p.exited); err != nil { // through the proxy
		return err
	}
	opts.Logger.Info("mail: Mailpit "+mailpitVersion()+", a child process (plain SMTP, no auth); its inbox and API at "+s.MailpitURL,
		"smtp", smtpAddr, "http", s.MailpitURL, "mailpit_internal", internalAddr, "pid", p.cmd.Process.Pid, "data", dir)
	return nil
}

func portOrFree(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	return freePort()
}

// smtpGreeting reads an SMTP server's 220 greeting and says QUIT.
func smtpGreeting(c net.Conn) error {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("SMTP greeting %q", strings.TrimSpace(line))
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return nil
}

// httpReady asks Mailpit's /readyz and wants a 200.
func httpReady(c net.Conn) error {
	host := c.RemoteAddr().String()
	if _, err := fmt.Fprintf(c, "GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n", host); err != nil {
		return err
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		return fmt.Errorf("GET /readyz: %q", strings.TrimSpace(status))
	}
	return nil
}

// mailpitLine is Mailpit's log format when its output is not a terminal.
var mailpitLine = regexp.MustCompile(`^time="[^"]*" level=(\w+) msg=(".*")$`)

// lineLog is an io.Writer that logs each line written to it: Mailpit's
// own log lines at their level, any other line at level.
type lineLog struct {
	log   *slog.Logger
	level slog.Level
	buf   []byte
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.logLine(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineLog) logLine(line string) {
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return
	}
	level, msg := w.level, line
	if m := mailpitLine.FindStringSubmatch(line); m != nil {
		if u, err := strconv.Unquote(m[2]); err == nil {
			msg = u
		}
		switch m[1] {
		case "debug":
			level = slog.LevelDebug
		case "info":
			level = slog.LevelInfo
		case "warning":
			level = slog.LevelWarn
		default:
			level = slog.LevelError
		}
	}
	w.log.Log(context.Background(), level, msg)
}
