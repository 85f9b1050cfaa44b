package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse reads every AgentPolicy document in one file's bytes. Unknown keys,
// wrong types and missing required fields are errors naming file and line.
func Parse(file string, data []byte) ([]*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []*Policy
	var errs []error
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlError(file, err)
		}
		p, err := decodeDoc(file, &node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// decodeDoc decodes one document strictly. yaml.v3 applies KnownFields only
// through a Decoder, so the node is re-encoded and decoded once more.
func decodeDoc(file string, node *yaml.Node) (*Policy, error) {
	if len(node.Content) == 0 {
		return nil, &Error{File: file, Line: node.Line, Msg: "empty document"}
	}
	root := node.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "a policy must be a mapping"}
	}
	if err := checkKeys(file, root); err != nil {
		return nil, err
	}
	var p Policy
	if err := root.Decode(&p); err != nil {
		return nil, yamlError(file, err)
	}
	p.File, p.Line = file, root.Line
	setLines(root, &p)
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlError(file string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	}
	return &Error{File: file, Line: line, Msg: msg}
}

// UnmarshalYAML keeps the expression's line.
func (e *Expr) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a CEL expression must be a string", n.Line)
	}
	e.Src, e.Line = n.Value, n.Line
	return nil
}

// UnmarshalYAML keeps declaration order and lines.
func (v *Variables) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: variables must be a mapping of name to CEL expression", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var e Expr
		if err := e.UnmarshalYAML(n.Content[i+1]); err != nil {
			return err
		}
		*v = append(*v, Variable{Name: n.Content[i].Value, Expr: e})
	}
	return nil
}

// UnmarshalYAML parses "90s", "15m", "1h", "1d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	dur, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration, d.Line = dur, n.Line
	return nil
}

// ParseDuration is time.ParseDuration plus whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use 30s, 15m, 1h or 1d", s)
	}
	return d, nil
}

// setLines records where each rule and limit starts, for error messages.
func setLines(root *yaml.Node, p *Policy) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		items := root.Content[i+1].Content
		switch root.Content[i].Value {
		case "rules":
			for j := range p.Rules {
				if j < len(items) {
					p.Rules[j].Line = items[j].Line
				}
			}
		case "rate_limits":
			for j := range p.RateLimits {
				if j < len(items) {
					p.RateLimits[j].Line = items[j].Line
				}
			}
		}
	}
}
