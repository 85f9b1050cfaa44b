// Package examples embeds the example policies, which `pdp serve` runs when
// no policy directory is given.
package examples

import (
	"embed"
	"io/fs"
)

//go:embed policies
var files embed.FS

// Policies returns the example policy directory.
func Policies() fs.FS {
	sub, err := fs.Sub(files, "policies")
	if err != nil {
		// fs.Sub fails only on an invalid path, and "policies" is valid.
		panic(err)
	}
	return sub
}
