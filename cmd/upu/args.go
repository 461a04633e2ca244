package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed reorders a command line so that a command's flags may follow
// its arguments, as the contract writes them (`upu set KEY VALUE --ttl 30s`):
// urfave/cli v2 stops reading flags at the first argument, so flags found
// after it are moved in front of the arguments, and global flags (--nodes,
// --timeout, --token) given after the command are moved in front of it. A
// "--" ends flag handling. A flag that needs a value and is last has none:
// that is a usage error, rather than the flag's taking an argument's place.
func interspersed(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	var global, path []string
	cmds, flags := app.Commands, app.Flags
	i := 1
	// Global flags, then the command path (subcommands included).
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			global = append(global, a)
			if takesValue(flags, a) && i+1 < len(args) {
				global = append(global, args[i+1])
				i++
			}
			i++
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			break
		}
		path = append(path, a)
		cmds, flags = cmd.Subcommands, cmd.Flags
		i++
		if len(cmds) == 0 {
			break
		}
	}
	if len(path) == 0 {
		return args, nil // no command: the app names what it does not know
	}
	var front, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i:]...)
			i = len(args)
		case looksLikeFlag(a):
			// Unknown ones too, so that the flag parser names them
			// instead of their passing as arguments.
			to := &front
			set := flags
			if lookupFlag(flags, a) == nil && lookupFlag(app.Flags, a) != nil {
				to, set = &global, app.Flags
			}
			*to = append(*to, a)
			if takesValue(set, a) {
				if i+1 == len(args) {
					return nil, fmt.Errorf("%w: %s needs a value", ErrUsage, a)
				}
				*to = append(*to, args[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append([]string{args[0]}, global...)
	out = append(out, path...)
	out = append(out, front...)
	return append(out, positional...), nil
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

// looksLikeFlag reports whether arg is written as a flag. A negative
// number (`upu incr k -5`) and "-" (standard input) are arguments; a value
// that starts with a dash goes after "--".
func looksLikeFlag(arg string) bool {
	if len(arg) < 2 || arg[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(arg, 64)
	return err != nil
}

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
