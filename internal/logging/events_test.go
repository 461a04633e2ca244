package logging

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryWarningHasAnEvent reads the module's code and fails on any
// entry logged at warn or above whose statement does not set FieldEvent:
// operators alert on the event keyword (docs/OPERATIONS.md), so a warning
// without one is a warning nobody can alert on.
func TestEveryWarningHasAnEvent(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var missing []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "integration" || d.Name() == "testdata" || d.Name() == "testcert") && path != root {
			// integration and testcert are test code (testcert's Fatal is testing.TB's).
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		imports := map[string]bool{}
		for _, im := range f.Imports {
			name := strings.Trim(im.Path.Value, `"`)
			name = name[strings.LastIndex(name, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			st, ok := n.(*ast.ExprStmt)
			if !ok {
				return true
			}
			call, ok := st.X.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Warn", "Warnf", "Error", "Errorf", "Fatal", "Fatalf":
			default:
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && imports[id.Name] {
				return true // a package's function (http.Error), not an entry
			}
			var sb strings.Builder
			printer.Fprint(&sb, fset, call)
			if !strings.Contains(sb.String(), "FieldEvent") {
				missing = append(missing, fset.Position(call.Pos()).String())
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Errorf("%s: logged at warn or above without FieldEvent", m)
	}
}

// TestRunbookListsEveryEvent: docs/OPERATIONS.md lists each event keyword,
// which operators write their alerts from.
func TestRunbookListsEveryEvent(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "format.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Event") {
					continue
				}
				n++
				value := strings.Trim(vs.Values[i].(*ast.BasicLit).Value, `"`)
				if !strings.Contains(string(doc), "`"+value+"`") {
					t.Errorf("docs/OPERATIONS.md does not list the event %s (%s)", value, name.Name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("found %d event constants in format.go", n)
	}
}
