// Package layers holds no code, only the test that keeps the import graph
// pointing down: it reads the layer list in docs/ARCHITECTURE.md and fails
// on any import, computed by `go list -deps`, from a package to one in a
// higher layer, and on any package of the module that the list leaves out.
package layers
