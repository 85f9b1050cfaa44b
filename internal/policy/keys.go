package policy

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKeys rejects keys the schema does not know, with their line. It walks
// the node tree against Policy's yaml tags because yaml.v3 offers strict
// decoding only through a Decoder, which loses the original lines here.
func checkKeys(file string, root *yaml.Node) error {
	return walkKeys(file, root, reflect.TypeOf(Policy{}))
}

var leafTypes = map[reflect.Type]bool{
	reflect.TypeOf(Expr{}):      true,
	reflect.TypeOf(Variables{}): true,
	reflect.TypeOf(Duration{}):  true,
}

func walkKeys(file string, n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if leafTypes[t] {
		return nil
	}
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			if err := walkKeys(file, item, t.Elem()); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			ft, ok := fields[key.Value]
			if !ok {
				return &Error{File: file, Line: key.Line, Msg: fmt.Sprintf(
					"unknown key %q (known: %s)", key.Value, strings.Join(sortedKeys(fields), ", "))}
			}
			if err := walkKeys(file, n.Content[i+1], ft); err != nil {
				return err
			}
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
