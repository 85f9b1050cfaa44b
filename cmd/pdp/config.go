package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// applyConfig fills every flag the command line did not set, first from
// its PDP_* environment variable (--audit-dir: PDP_AUDIT_DIR), then from
// the config file's key of the same name (audit-dir or audit_dir).
func applyConfig(fs *pflag.FlagSet, configFile string) error {
	file := map[string]any{}
	if configFile != "" {
		data, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			return fmt.Errorf("config %s: %w", configFile, err)
		}
	}
	known := map[string]bool{}
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		known[f.Name] = true
		if f.Changed {
			return
		}
		val, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			var v any
			if v, ok = lookupKey(file, f.Name); ok {
				val = configValue(v)
			}
		}
		if ok {
			if err := fs.Set(f.Name, val); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", f.Name, err))
			}
		}
	})
	for k := range file {
		if !known[strings.ReplaceAll(k, "_", "-")] {
			errs = append(errs, fmt.Sprintf("config %s: unknown key %q", configFile, k))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func envName(flag string) string {
	return "PDP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func lookupKey(m map[string]any, flag string) (any, bool) {
	if v, ok := m[flag]; ok {
		return v, true
	}
	v, ok := m[strings.ReplaceAll(flag, "-", "_")]
	return v, ok
}

func configValue(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, e := range list {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}
