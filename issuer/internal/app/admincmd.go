package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jotguard/jotguard/issuer/internal/auth"
	"github.com/jotguard/jotguard/issuer/internal/config"
	"github.com/jotguard/jotguard/sdk"
	"golang.org/x/sync/errgroup"
)

// The administration commands: `issuer users create|roles` and `issuer
// clients create|list|delete`. They run the same domain code as the admin
// API, as the administrator "cli", against the configured MongoDB and
// Redis, and publish their revocation events like the server (to Kafka,
// or to the outbox a running issuer relays).

// Cmd is one administration command, parsed.
type Cmd struct {
	Group, Name string   // "users" "create", …
	Email       string   // --email (users create)
	ClientName  string   // --name (clients create)
	Roles       string   // --roles (create), a comma list
	Args        []string // positional: users roles E R; clients delete ID
}

// Commands lists the administration commands with their usage.
var Commands = map[string]string{
	"users create":   "issuer users create --email E [--roles a,b] [flags]  (password on stdin)",
	"users roles":    "issuer users roles E a,b [flags]",
	"clients create": "issuer clients create --name N [--roles a,b] [flags]",
	"clients list":   "issuer clients list [flags]",
	"clients delete": "issuer clients delete ID [flags]",
}

// positional is how many positional arguments each command takes.
var positional = map[string]int{"users roles": 2, "clients delete": 1}

// ParseCommand reads an administration command from args (the words after
// the binary's name, starting with users or clients) and returns it and
// the rest of args, the settings' flags.
func ParseCommand(args []string) (Cmd, []string, error) {
	if len(args) < 2 {
		return Cmd{}, nil, errors.New("usage: " + usage(""))
	}
	cmd := Cmd{Group: args[0], Name: args[1]}
	key := cmd.Group + " " + cmd.Name
	if _, ok := Commands[key]; !ok {
		return Cmd{}, nil, errors.New("usage: " + usage(cmd.Group))
	}
	own := map[string]*string{"roles": &cmd.Roles}
	switch key {
	case "users create":
		own["email"] = &cmd.Email
	case "clients create":
		own["name"] = &cmd.ClientName
	}
	var rest []string
	for i := 2; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			cmd.Args = append(cmd.Args, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "help" || name == "h" {
			rest = append(rest, a)
			continue
		}
		if !hasVal { // every flag takes a value: the next word
			if i+1 >= len(args) {
				return Cmd{}, nil, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		if p, ok := own[name]; ok {
			*p = val
		} else {
			rest = append(rest, "--"+name+"="+val) // a setting's flag
		}
	}
	switch {
	case slices.ContainsFunc(rest, func(a string) bool { return a == "--help" || a == "-help" || a == "-h" || a == "--h" }):
		// the settings' usage, whatever else is missing
	case len(cmd.Args) != positional[key]:
		return Cmd{}, nil, errors.New("usage: " + Commands[key])
	case key == "users create" && cmd.Email == "", key == "clients create" && cmd.ClientName == "":
		return Cmd{}, nil, errors.New("usage: " + Commands[key])
	}
	return cmd, rest, nil
}

func usage(group string) string {
	var out []string
	for k, u := range Commands {
		if group == "" || strings.HasPrefix(k, group+" ") {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n       ")
}

// Command runs an administration command; stdin gives the password of
// users create, stdout gets the answer.
func Command(ctx context.Context, cfg config.Config, log *slog.Logger, cmd Cmd, stdin io.Reader, stdout io.Writer) error {
	c, err := newCore(ctx, cfg, log, nil) // no tracing: one command, not a service
	if err != nil {
		return err
	}
	defer c.close(ctx)
	// The commands check no token: the verifier is only there because the
	// service needs one.
	tokens, err := sdk.NewVerifier(ctx, sdk.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.Leeway,
		MaxTokenLifetime: cfg.AccessTTL, Keys: sdk.NewLocalKeys(c.km.JWKS), Logger: log})
	if err != nil {
		return err
	}
	svc, err := c.service(cfg, log, tokens, nil)
	if err != nil {
		return err
	}
	// The audit entry is written behind the command: wait for it.
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var g errgroup.Group
	g.Go(func() error { return c.audit.Run(actx) })
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.audit.Flush(fctx)
		stop()
		_ = g.Wait()
	}()
	a := auth.CommandLine()
	switch cmd.Group + " " + cmd.Name {
	case "users create":
		return usersCreate(ctx, svc, a, cmd, stdin, stdout)
	case "users roles":
		roles, err := auth.ParseRoles(cmd.Args[1])
		if err != nil {
			return err
		}
		u, err := svc.SetRoles(ctx, a, cmd.Args[0], roles)
		if errors.Is(err, auth.ErrUserNotFound) {
			return fmt.Errorf("no user has the address %s", cmd.Args[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s %s: roles %s (tokens issued before are revoked everywhere; the next refresh carries the new roles)\n",
			u.ID, u.Email, strings.Join(u.Roles, ","))
		return nil
	case "clients create":
		roles, err := auth.ParseRoles(cmd.Roles)
		if err != nil {
			return err
		}
		cl, secret, err := svc.CreateClient(ctx, a, cmd.ClientName, roles)
		if err != nil {
			return err
		}
		// KEY=value lines a shell can read; the secret is shown this once.
		fmt.Fprintf(stdout, "client_id=%s\nclient_secret=%s\n", cl.ID, secret)
		return nil
	case "clients list":
		all, err := svc.Clients(ctx, a)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tROLES\tCREATED\tBY")
		for _, cl := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cl.ID, cl.Name, strings.Join(cl.Roles, ","),
				cl.CreatedAt.Format(time.RFC3339), cl.CreatedBy)
		}
		return tw.Flush()
	case "clients delete":
		if err := svc.DeleteClient(ctx, a, cmd.Args[0]); err != nil {
			if errors.Is(err, auth.ErrClientNotFound) {
				return fmt.Errorf("no service account %s", cmd.Args[0])
			}
			return err
		}
		fmt.Fprintf(stdout, "deleted %s: its tokens are revoked everywhere\n", cmd.Args[0])
		return nil
	}
	return errors.New("usage: " + usage(""))
}

// usersCreate reads the password from the first line of stdin.
func usersCreate(ctx context.Context, svc *auth.Service, a auth.Admin, cmd Cmd, stdin io.Reader, stdout io.Writer) error {
	roles, err := auth.ParseRoles(cmd.Roles)
	if err != nil {
		return err
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return errors.New("no password on stdin (give it as the first line)")
	}
	u, err := svc.CreateUser(ctx, a, auth.RegisterInput{Email: cmd.Email, Password: password}, roles)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s %s, roles %s\n", u.ID, u.Email, strings.Join(u.Roles, ","))
	return nil
}
