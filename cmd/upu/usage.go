package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"github.com/xrash/smetrics"
)

// ErrUsage is wrapped by every command-line mistake: an unknown command or
// flag, a flag without its value, a value of the wrong form, a stray
// argument. run prints it on one line and exits 2, never with a page of help.
var ErrUsage = errors.New("upu: usage")

// The errors of the standard flag package that urfave/cli passes on.
var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	missingValue  = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	invalidValue  = regexp.MustCompile(`^invalid value "(.*)" for flag -+([^:]+): (.*)$`)
)

// withUsageErrors makes every command of app report its usage mistakes
// through usageError, and answer an unknown subcommand by name.
func withUsageErrors(app *cli.App) *cli.App {
	app.OnUsageError = usageError
	app.Action = unknownCommandAction
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = usageError
			if len(c.Subcommands) > 0 && c.Action == nil {
				c.Action = unknownCommandAction
			}
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	return app
}

// commandPath is the command's full name as a user types it: "upu reqid decode".
func commandPath(c *cli.Context) string {
	if c.Command == nil || c.Command.Name == "" {
		return c.App.Name
	}
	return c.Command.HelpName
}

// unknownCommandAction runs when a command that only groups others (or the
// app itself) is given no known subcommand.
func unknownCommandAction(c *cli.Context) error {
	cmds := c.App.Commands
	if c.Command != nil && c.Command.Name != "" {
		cmds = c.Command.Subcommands
	}
	if c.NArg() == 0 {
		return cli.ShowSubcommandHelp(c)
	}
	name := c.Args().First()
	var names []string
	for _, cmd := range cmds {
		if !cmd.Hidden {
			names = append(names, cmd.Names()...)
		}
	}
	return fmt.Errorf("%w: unknown command %q for %q%s; '%s --help' lists the commands",
		ErrUsage, name, commandPath(c), didYouMean(name, names), commandPath(c))
}

// usageError rewrites a flag-parsing error into one line that names the
// flag and, where it can, what was expected.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	path := commandPath(c)
	var flags []cli.Flag
	if c.Command != nil && c.Command.Name != "" {
		flags = c.Command.Flags
	} else {
		flags = c.App.Flags
	}
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		var names []string
		for _, f := range flags {
			names = append(names, f.Names()...)
		}
		hint := didYouMean(m[1], names)
		if hint != "" {
			hint = strings.Replace(hint, `"`, `"--`, 1)
		}
		return fmt.Errorf("%w: unknown flag %s for %q%s; '%s --help' lists the flags", ErrUsage, dashed(m[1]), path, hint, path)
	}
	if m := missingValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%w: %s needs a value", ErrUsage, dashed(m[1]))
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		value, name := m[1], m[2]
		return fmt.Errorf("%w: %s %q: %s", ErrUsage, dashed(name), value, expectedForm(lookupFlag(flags, name)))
	}
	return fmt.Errorf("%w: %s", ErrUsage, msg)
}

// expectedForm says what a flag's value must look like.
func expectedForm(f cli.Flag) string {
	switch f.(type) {
	case *cli.DurationFlag, *altsrc.DurationFlag:
		return "a duration needs a unit, e.g. 5s, 250ms, 1m30s"
	case *cli.IntFlag, *cli.Int64Flag, *altsrc.IntFlag, *altsrc.Int64Flag:
		return "want a whole number, e.g. 1024"
	case *cli.UintFlag, *cli.Uint64Flag, *altsrc.UintFlag, *altsrc.Uint64Flag:
		return "want a whole number that is not negative"
	case *cli.BoolFlag, *altsrc.BoolFlag:
		return "want true or false"
	}
	return "not a valid value for it"
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// didYouMean suggests the name closest to got, by Jaro-Winkler similarity
// (what urfave/cli's own suggestions use), when one is close enough to be a
// likely typo; else "".
func didYouMean(got string, names []string) string {
	const threshold = 0.8
	best, score := "", 0.0
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		if s := smetrics.JaroWinkler(got, n, 0.7, 4); s > score {
			best, score = n, s
		}
	}
	if score < threshold {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
