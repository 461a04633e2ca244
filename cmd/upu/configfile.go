package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"

	"github.com/upu/upu/node"
)

// checkConfigFile reads the YAML file given to --config and reports every
// problem in it at once, each with its line: a syntax error, a key that
// names no flag of serve (with the closest one that does), a value of the
// wrong type. altsrc, which then applies the file, would ignore an unknown
// key and describe the rest in its own terms.
func checkConfigFile(path string, flags []cli.Flag) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: config file: %w", node.ErrConfig, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%w: config file %s: %s", node.ErrConfig, path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil // empty file: nothing set
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: config file %s: line %d: want a mapping of flag names to values, e.g. \"domain: dc1\"", node.ErrConfig, path, root.Line)
	}
	var known []string
	for _, f := range flags {
		if f.Names()[0] != "config" {
			known = append(known, f.Names()...)
		}
	}
	var errs []error
	bad := func(n *yaml.Node, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: config file %s: line %d: %s", node.ErrConfig, path, n.Line, fmt.Sprintf(format, a...)))
	}
	seen := make(map[string]bool)
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		f := lookupFlag(flags, "--"+key.Value)
		if f == nil || key.Value == "config" {
			bad(key, "unknown key %q%s", key.Value, didYouMean(key.Value, known))
			continue
		}
		if seen[key.Value] {
			bad(key, "key %q given twice", key.Value)
		}
		seen[key.Value] = true
		if want := checkValue(f, val); want != "" {
			bad(val, "%s: %q: %s", key.Value, val.Value, want)
		}
	}
	return errors.Join(errs...)
}

// checkValue says what is wrong with a YAML value for flag f, or "".
func checkValue(f cli.Flag, v *yaml.Node) string {
	switch f.(type) {
	case *altsrc.StringSliceFlag:
		if v.Kind == yaml.SequenceNode {
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return "want a list of strings"
				}
			}
			return ""
		}
		if v.Kind != yaml.ScalarNode {
			return "want a list of strings or one comma-separated string"
		}
		return ""
	}
	if v.Kind != yaml.ScalarNode {
		return "want a single value, not a list or a mapping"
	}
	// The messages are the command line's for the same mistake.
	switch f.(type) {
	case *altsrc.DurationFlag:
		if _, err := time.ParseDuration(v.Value); err != nil {
			return expectedForm(f)
		}
	case *altsrc.IntFlag, *altsrc.Int64Flag:
		if v.Tag != "!!int" {
			return expectedForm(f)
		}
	case *altsrc.BoolFlag:
		if v.Tag != "!!bool" {
			return expectedForm(f)
		}
	case *altsrc.StringFlag:
		if v.Tag != "!!str" {
			return "want a string: quote it"
		}
	}
	return ""
}
