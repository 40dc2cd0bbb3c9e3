package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/internal/service"
	"github.com/keygate/keygate/rbac"
)

// adminCommand runs the operator subcommands that need no running server:
//
//	keygate user create --email E [--role R] [--invite] [--send-email]
//	keygate invite --email E [--send-email]
//
// They act as the master key would, on the configured database, and print
// the invitation link so an operator without the UI can onboard people.
func adminCommand(ctx context.Context, name string, args []string, e env, stdout io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML configuration file")
	email := fs.String("email", "", "the user's e-mail address")
	role := fs.String("role", string(rbac.RoleInternalUser), "role for a new user")
	invite := fs.Bool("invite", false, "also create an invitation link (user create)")
	sendEmail := fs.Bool("send-email", false, "e-mail the invitation (needs SMTP_*)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, usage)
	}
	if *email == "" {
		return fmt.Errorf("%s: --email is required\n%s", name, usage)
	}
	cfgArgs := []string{}
	if *configPath != "" {
		cfgArgs = append(cfgArgs, "--config", *configPath)
	}
	cfg, err := loadConfig(name, cfgArgs, e)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := issuerURL(cfg)
	if err := prepareDataDir(cfg, log); err != nil {
		return err
	}
	a, err := buildApp(ctx, cfg, log, sha256.Sum256([]byte("sk-cli-unused")), base)
	if err != nil {
		return err
	}
	defer a.close()
	svc := a.Service()
	admin := auth.Principal{Method: auth.MethodMasterKey, Role: rbac.RoleProxyAdmin}
	userID := ""
	if name == "user create" {
		r := *role
		no := false
		d, err := svc.CreateUser(ctx, admin, service.NewUser{UserEmail: email, UserRole: &r, AutoCreateKey: &no})
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		userID = d.User.ID
		fmt.Fprintf(stdout, "created user %s (%s, %s)\n", d.User.ID, d.User.Email, d.User.Role)
		if !*invite {
			return nil
		}
	} else {
		u, err := svc.GetUserByEmail(ctx, admin, *email)
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		userID = u.ID
	}
	iss, err := svc.CreateInvitation(ctx, admin, service.NewInvitation{UserID: userID, SendEmail: sendEmail})
	if err != nil {
		return fmt.Errorf("create invitation: %w", err)
	}
	fmt.Fprintf(stdout, "invitation link (valid until %s, single use):\n%s\n", iss.Invitation.ExpiresAt.Format("2006-01-02 15:04:05 MST"), iss.Link)
	if *sendEmail {
		if iss.MailSent {
			fmt.Fprintf(stdout, "e-mailed to %s\n", iss.UserEmail)
		} else {
			fmt.Fprintf(stdout, "not e-mailed: %s\n", iss.MailError)
		}
	}
	return nil
}
