// Command upu runs a UPU node and talks to running ones. See README.md and
// DESIGN.md section 11 for the contract scripts rely on: command and flag
// names, output formats and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/upu/upu/client"
)

// Exit codes: 0 success, 1 a key was not found, 2 any other failure.
const (
	exitNotFound = 1
	exitFailure  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	var err error
	// A completion request is answered from the line as typed: its flag
	// must stay last, where urfave/cli looks for it.
	if len(args) == 0 || args[len(args)-1] != "--generate-bash-completion" {
		args, err = interspersed(app, args)
	}
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, client.ErrNotFound):
		fmt.Fprintln(stderr, notFound(err))
		return exitNotFound
	default:
		fmt.Fprintln(stderr, "upu:", oneLine(err))
		return exitFailure
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return withUsageErrors(&cli.App{
		Reader:               stdin,
		Name:                 "upu",
		Usage:                "a masterless, replicated cache and key-value node",
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		// Errors are printed once, by run, with the contract's exit codes.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "nodes", EnvVars: []string{"UPU_NODES"}, Value: cli.NewStringSlice("127.0.0.1:7700"), Usage: "nodes a client command talks to, `HOST:PORT[,...]`"},
			&cli.DurationFlag{Name: "timeout", Value: defaultTimeout, Usage: "how long a client command waits for an answer"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"UPU_TOKEN"}, Usage: "token for the client role (or the admin role for admin commands)"},
		},
		Commands: []*cli.Command{
			serveCommand(), devCommand(),
			setCommand(), getCommand(), delCommand(), incrCommand("incr", 1), incrCommand("decr", -1),
			statusCommand(), membersCommand(), cascadeCommand(), digestCommand(), logLevelCommand(), slowThresholdCommand(), reqidCommand(), benchCommand(), completionCommand(),
		},
	})
}

// notFound is the line a miss prints: "not found", and for a read up the
// tree the domain that answered, as the node said it ("not found (domain
// top)").
func notFound(err error) string {
	var se *client.ServerError
	if errors.As(err, &se) && strings.HasPrefix(se.Message, "not found") {
		return se.Message
	}
	return "not found"
}

// oneLine keeps an error message on one line, as scripts expect: the lines
// of a joined error are joined with "; ", each without the "upu: " that
// the project's errors start with (run prints it once).
func oneLine(err error) string {
	lines := strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "upu: ")
	}
	return strings.Join(lines, "; ")
}
