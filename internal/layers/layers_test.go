package layers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/upu/upu"

// layer is one numbered line of the list: its patterns are package paths
// relative to the module, or a prefix ending in "/..." for a whole subtree.
type layer struct {
	n        int
	patterns []string
}

var (
	layerLine = regexp.MustCompile(`^(\d+)\.\s+(.*)$`)
	pkgName   = regexp.MustCompile("`([^`]+)`")
)

// parseLayers reads the numbered list that follows the line "## Layers" up to
// the next heading.
func parseLayers(doc []byte) ([]layer, error) {
	var (
		layers []layer
		in     bool
		seen   = make(map[string]int)
	)
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			if in {
				break
			}
			in = line == "## Layers"
			continue
		}
		if !in {
			continue
		}
		m := layerLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if len(layers) > 0 && n != layers[len(layers)-1].n+1 {
			return nil, fmt.Errorf("layer %d follows layer %d", n, layers[len(layers)-1].n)
		}
		// The patterns are the code spans before the first colon: the rest of
		// the line is prose that may name packages too.
		names, _, _ := strings.Cut(m[2], ":")
		l := layer{n: n}
		for _, p := range pkgName.FindAllStringSubmatch(names, -1) {
			if first, ok := seen[p[1]]; ok {
				return nil, fmt.Errorf("%s is in layer %d and layer %d", p[1], first, n)
			}
			seen[p[1]] = n
			l.patterns = append(l.patterns, p[1])
		}
		if len(l.patterns) == 0 {
			return nil, fmt.Errorf("layer %d names no package", n)
		}
		layers = append(layers, l)
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("no numbered list under \"## Layers\"")
	}
	return layers, nil
}

func (l layer) matches(rel string) bool {
	for _, p := range l.patterns {
		if prefix, ok := strings.CutSuffix(p, "/..."); ok {
			if rel == prefix || strings.HasPrefix(rel, prefix+"/") {
				return true
			}
		} else if rel == p {
			return true
		}
	}
	return false
}

// layerOf returns the layer of a package of the module, or 0 if the list
// leaves it out.
func layerOf(layers []layer, rel string) int {
	for _, l := range layers {
		if l.matches(rel) {
			return l.n
		}
	}
	return 0
}

type goPackage struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// modulePackages lists every package of the module with the packages it
// imports, as `go list -deps` sees them (test files excluded: a test may
// reach up, as integration's do).
func modulePackages(t *testing.T, root string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/") {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

func relative(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

func TestImportsPointDown(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := parseLayers(doc)
	if err != nil {
		t.Fatalf("docs/ARCHITECTURE.md: %v", err)
	}
	pkgs := modulePackages(t, root)
	if len(pkgs) == 0 {
		t.Fatal("go list found no package of the module")
	}
	rels := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		rel, _ := relative(p.ImportPath)
		rels = append(rels, rel)
		from := layerOf(layers, rel)
		if from == 0 {
			t.Errorf("%s is in no layer of docs/ARCHITECTURE.md", rel)
			continue
		}
		for _, imp := range p.Imports {
			irel, ok := relative(imp)
			if !ok {
				continue
			}
			if to := layerOf(layers, irel); to > from {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down the layer list", rel, from, irel, to)
			}
		}
	}
	for _, l := range layers {
		for _, pat := range l.patterns {
			one := layer{patterns: []string{pat}}
			if !slices.ContainsFunc(rels, one.matches) {
				t.Errorf("docs/ARCHITECTURE.md layer %d lists %s, which is no package of the module", l.n, pat)
			}
		}
	}
}

func TestParseLayers(t *testing.T) {
	doc := []byte("# A\n## Layers\n\n1. `crdt`, `internal/...`: pure values, like `store` uses\n2. `store`\n\n## Next\n3. `node`\n")
	layers, err := parseLayers(doc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pkg  string
		want int
	}{
		{"crdt", 1},
		{"internal/clock", 1},
		{"internal", 1},
		{"internalx", 0},
		{"store", 2},
		{"node", 0}, // after the next heading: not part of the list
	}
	for _, tt := range tests {
		if got := layerOf(layers, tt.pkg); got != tt.want {
			t.Errorf("layerOf(%q) = %d, want %d", tt.pkg, got, tt.want)
		}
	}
	for _, bad := range []string{
		"## Layers\n1. `a`\n3. `b`\n",  // a gap
		"## Layers\n1. no code span\n", // no package
		"## Other\n1. `a`\n",           // no list
		"## Layers\n1. `a`\n2. `a`\n",  // twice
	} {
		if _, err := parseLayers([]byte(bad)); err == nil {
			t.Errorf("parseLayers(%q) = nil error", bad)
		}
	}
}
