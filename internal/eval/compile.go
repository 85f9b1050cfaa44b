package eval

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/agentpdp/agentpdp/internal/policy"
)

// DefaultCostLimit bounds the CEL cost of one expression evaluation, so no
// expression can stall the PDP (a comprehension over a huge list, say).
const DefaultCostLimit = 1_000_000

// DefaultApprovalTTL is how long an approval lives when a policy says nothing.
const DefaultApprovalTTL = time.Hour

// Options configure a Compiler.
type Options struct {
	Content   ContentScanner
	CostLimit uint64 // 0: DefaultCostLimit
}

// Compiler turns policy files into a Set. It holds the one CEL environment.
type Compiler struct {
	env       *cel.Env
	costLimit uint64
}

// NewCompiler builds the CEL environment.
func NewCompiler(opts Options) (*Compiler, error) {
	env, err := newEnv(opts.Content)
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	if opts.CostLimit == 0 {
		opts.CostLimit = DefaultCostLimit
	}
	return &Compiler{env: env, costLimit: opts.CostLimit}, nil
}

// IsPolicyFile reports whether name is a policy (not a test suite).
func IsPolicyFile(name string) bool {
	ext := path.Ext(name)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	return !strings.HasSuffix(strings.TrimSuffix(name, ext), "_test")
}

// LoadFS reads and compiles every policy file under fsys. prefix is put in
// front of file names in errors, e.g. the directory fsys was opened from.
// Every error of every file is reported; any error refuses the whole set.
func (c *Compiler) LoadFS(fsys fs.FS, prefix string) (*Set, error) {
	files, err := readPolicyFiles(fsys)
	if err != nil {
		return nil, err
	}
	var errs []error
	var policies []*policy.Policy
	digest := sha256.New()
	for _, f := range files {
		name := path.Join(prefix, f.name)
		fmt.Fprintf(digest, "%s\x00%d\x00", f.name, len(f.data))
		digest.Write(f.data)
		ps, err := policy.Parse(name, f.data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		policies = append(policies, ps...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	set, err := c.Compile(policies)
	if err != nil {
		return nil, err
	}
	set.Version = hex.EncodeToString(digest.Sum(nil))[:16]
	return set, nil
}

type file struct {
	name string
	data []byte
}

func readPolicyFiles(fsys fs.FS) ([]file, error) {
	var files []file
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Kubernetes ConfigMap mounts keep old copies in ..dirs.
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || !IsPolicyFile(d.Name()) {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, file{name: p, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// Compile type-checks and indexes parsed policies.
func (c *Compiler) Compile(policies []*policy.Policy) (*Set, error) {
	set := &Set{exact: map[string]*Policy{}, adapter: c.env.CELTypeAdapter()}
	owners := map[string]*policy.Policy{}
	var errs []error
	for _, src := range policies {
		p, err := c.compilePolicy(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range src.Agents {
			if prev, dup := owners[a]; dup {
				errs = append(errs, &policy.Error{File: src.File, Line: src.Line, Msg: fmt.Sprintf(
					"agent %q is already governed by policy %q (%s): one policy per agent", a, prev.Name, prev.File)})
				continue
			}
			owners[a] = src
			if policy.IsGlob(a) {
				set.globs = append(set.globs, agentGlob{pattern: a, policy: p})
			} else {
				set.exact[a] = p
			}
		}
		set.Policies = append(set.Policies, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sortGlobs(set.globs)
	return set, nil
}

// splitRedact turns "args.a.b" into ["a", "b"]; the policy package has
// checked the form.
func splitRedact(paths []string) [][]string {
	var out [][]string
	for _, p := range paths {
		out = append(out, strings.Split(strings.TrimPrefix(p, "args."), "."))
	}
	return out
}

func (c *Compiler) compilePolicy(src *policy.Policy) (*Policy, error) {
	p := &Policy{
		Name:         src.Name,
		File:         src.File,
		Mode:         parseMode(src.Mode),
		Default:      parseEffect(src.Default),
		Redact:       splitRedact(src.Audit.Redact),
		ApprovalTTL:  src.Approval.TTL.Duration,
		SuspendAfter: src.SuspendAfter,
	}
	if p.ApprovalTTL == 0 {
		p.ApprovalTTL = DefaultApprovalTTL
	}
	pc, err := c.newPolicyCompiler(src)
	if err != nil {
		return nil, err
	}
	for _, r := range src.Rules {
		cr, err := pc.rule(r)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, cr)
	}
	for _, l := range src.RateLimits {
		cl, err := pc.limit(l)
		if err != nil {
			return nil, err
		}
		p.limits = append(p.limits, cl)
	}
	p.index()
	return p, nil
}

func parseMode(s string) Mode {
	switch s {
	case "observe":
		return Observe
	case "warn":
		return Warn
	}
	return Enforce
}

func parseEffect(s string) Effect {
	switch s {
	case "allow":
		return Allow
	case "require_approval":
		return RequireApproval
	}
	return Deny
}
