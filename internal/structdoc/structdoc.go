// Package structdoc reads the comments of struct types and their fields
// from Go source, for reference pages generated from the code (docs/spec.md,
// docs/sweep-file.md) that must say what the code's comments say.
package structdoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
)

// Comments maps "Type" to the doc comment of each struct type declared in
// the files, and "Type.Field" to its field's doc and line comments joined
// on one line.
func Comments(paths ...string) (map[string]string, error) {
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range paths {
		file, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("structdoc: %w", err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				doc := ts.Doc
				if doc == nil {
					doc = g.Doc
				}
				out[ts.Name.Name] = doc.Text()
				for _, f := range st.Fields.List {
					text := strings.Join(strings.Fields(f.Doc.Text()+" "+f.Comment.Text()), " ")
					for _, name := range f.Names {
						out[ts.Name.Name+"."+name.Name] = text
					}
				}
			}
		}
	}
	return out, nil
}
