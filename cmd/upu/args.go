package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed reorders a command line so that a command's flags may follow
// its arguments, as the contract writes them (`upu set KEY VALUE --ttl 30s`):
// urfave/cli v2 stops reading flags at the first argument, so flags found
// after it are moved in front of the arguments. A "--" ends flag handling.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds, flags := app.Commands, app.Flags
	i := 1
	// Global flags, then the command path (subcommands included).
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			i++
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			break
		}
		out = append(out, a)
		cmds, flags = cmd.Subcommands, cmd.Flags
		i++
		if len(cmds) == 0 {
			break
		}
	}
	var front, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1 && isFlag(flags, a):
			front = append(front, a)
			if takesValue(flags, a) && i+1 < len(args) {
				front = append(front, args[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	out = append(out, front...)
	return append(out, positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// lookupFlag finds the flag named by an argument such as --ttl or --ttl=5s.
func lookupFlag(flags []cli.Flag, arg string) cli.Flag {
	name := strings.TrimLeft(arg, "-")
	if k := strings.IndexByte(name, '='); k >= 0 {
		name = name[:k]
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// isFlag reports whether arg names one of flags; a negative number such as
// `upu incr k -5` is an argument, not a flag.
func isFlag(flags []cli.Flag, arg string) bool { return lookupFlag(flags, arg) != nil }

// takesValue reports whether arg is a flag whose value is the next argument.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	f := lookupFlag(flags, arg)
	if f == nil {
		return false
	}
	df, ok := f.(cli.DocGenerationFlag)
	return ok && df.TakesValue()
}
