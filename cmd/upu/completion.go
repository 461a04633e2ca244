package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask upu itself for the candidates: urfave/cli
// answers a command line ending in --generate-bash-completion with the
// commands, subcommands or flags that may come next.
const (
	bashCompletion = `# upu completion for bash: source <(upu completion bash)
_upu_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}" opts
	if [[ "$cur" == -* ]]; then
		opts=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _upu_complete upu
`
	zshCompletion = `#compdef upu
# upu completion for zsh: source <(upu completion zsh)
_upu() {
	local -a opts
	local cur="${words[-1]}"
	if [[ "$cur" == -* ]]; then
		opts=("${(@f)$(${words[1]} ${words[@]:1:#words[@]-2} "$cur" --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[1]} ${words[@]:1:#words[@]-2} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ "${opts[1]}" != "" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _upu upu
`
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: source <(upu completion bash)",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "bash|zsh|fish"); err != nil {
				return err
			}
			return writeCompletion(c.App, c.App.Writer, c.Args().First())
		},
	}
}

func writeCompletion(app *cli.App, w io.Writer, shell string) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		s, err := app.ToFishCompletion()
		if err != nil {
			return err
		}
		script = s
	default:
		return fmt.Errorf("%w: completion for %q: want bash, zsh or fish", ErrUsage, shell)
	}
	_, err := io.WriteString(w, script)
	return err
}
